// The unmodified npm `convex` client against a convex_lab backend served on loopback.
// tests/test_wire_node.py starts the backend (tests/_wire_app.py) and runs
//   CONVEX_URL=... CONVEX_TOKEN=<jwt for "ada"> node --test tests/node/
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";

const url = process.env.CONVEX_URL;
const token = process.env.CONVEX_TOKEN;
const api = anyApi;

// Resolves with the first value of `query` for which `pred` holds.
function until(client, query, args, pred, seen = []) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 10000);
    const unsubscribe = client.onUpdate(query, args, (value) => {
      seen.push(value);
      if (pred(value)) {
        clearTimeout(timer);
        unsubscribe();
        resolve(value);
      }
    }, reject);
  });
}

test("ConvexHttpClient: query, mutation, action, int64, bytes, ConvexError", async () => {
  const http = new ConvexHttpClient(url);
  const id = await http.mutation(api.messages.send, { body: "over http" });
  assert.equal(typeof id, "string");
  const listed = await http.query(api.messages.list, {});
  assert.ok(listed.some((m) => m.body === "over http" && typeof m._creationTime === "number"));
  assert.equal(await http.mutation(api.counters.bump, { name: "http" }), 1n);
  assert.equal(await http.query(api.counters.get, { name: "http" }), 1n);
  const big = await http.query(api.values.echo, { value: 2n ** 62n });
  assert.deepEqual(big, { value: 2n ** 62n, type: "Int64" });
  const bytes = await http.query(api.values.echo, { value: new Uint8Array([0, 255, 7]).buffer });
  assert.equal(bytes.type, "bytes");
  assert.deepEqual([...new Uint8Array(bytes.value)], [0, 255, 7]);
  const nan = await http.query(api.values.echo, { value: NaN });
  assert.ok(Number.isNaN(nan.value));
  assert.equal(await http.action(api.actions.shout, { body: "hey" }), "HEY");
  await assert.rejects(http.mutation(api.messages.send, { body: "" }), (e) => {
    assert.ok(e instanceof ConvexError);
    assert.deepEqual(e.data, { code: "EmptyMessage", n: 3n });
    return true;
  });
  await assert.rejects(http.mutation("fail:plain", {}), /the secret is 42/);
  http.setAuth(token);
  assert.equal(await http.query("whoami", {}), "ada");
  assert.equal(await http.consistentQuery(api.messages.count, {}), (await http.query(api.messages.count, {})));
});

test("ConvexClient: a subscription follows mutations from another client", async () => {
  const watcher = new ConvexClient(url);
  const writer = new ConvexClient(url);
  try {
    const start = await watcher.query(api.messages.count, {});
    const seen = until(watcher, api.messages.count, {}, (n) => n === start + 2);
    await writer.mutation(api.messages.send, { body: "one" });
    await writer.mutation(api.messages.send, { body: "two" });
    assert.equal(await seen, start + 2);
    // read your writes: once mutation() resolves, the writer's own subscription has it
    const mine = until(writer, api.messages.count, {}, (n) => n >= start + 2);
    assert.equal(await mine, start + 2);
    const list = writer.onUpdate(api.messages.list, {}, () => {});
    await until(writer, api.messages.list, {}, (v) => v.length === start + 2);
    const id = await writer.mutation(api.messages.send, { body: "three" });
    // no waiting: the transition that completed the mutation carried its effects
    assert.ok(list.getCurrentValue().some((m) => m._id === id), "read your writes");
    list.unsubscribe();
    assert.equal(await writer.action(api.actions.shout, { body: "act" }), "ACT");
  } finally {
    await watcher.close();
    await writer.close();
  }
});

test("ConvexClient: setAuth gives the identity to queries", async () => {
  const client = new ConvexClient(url);
  try {
    assert.equal(await client.query("whoami", {}), null);
    let authenticated = null;
    client.setAuth(async () => token, (ok) => { authenticated = ok; });
    assert.equal(await until(client, "whoami", {}, (who) => who === "ada"), "ada");
    assert.equal(authenticated, true);
  } finally {
    await client.close();
  }
});

test("ConvexClient: an optimistic update shows at once, gives way to the server's value, and rolls back on failure", async () => {
  const client = new ConvexClient(url);
  try {
    const before = await client.query(api.messages.list, {});
    const history = [];
    const unsubscribe = client.onUpdate(api.messages.list, {}, (v) => history.push(v));
    await until(client, api.messages.list, {}, (v) => v.length === before.length);
    const optimisticUpdate = (store, args) => {
      const current = store.getQuery(api.messages.list, {});
      if (current !== undefined) {
        store.setQuery(api.messages.list, {}, [...current,
          { _id: "optimistic", _creationTime: Date.now(), body: args.body }]);
      }
    };

    history.length = 0;
    const pending = client.mutation(api.messages.send, { body: "fast" }, { optimisticUpdate });
    // shown before the server answered: the callback already ran with the optimistic item
    await new Promise((r) => setImmediate(r));
    assert.ok(history.some((v) => v.some((m) => m._id === "optimistic" && m.body === "fast")),
      `no optimistic value in ${JSON.stringify(history)}`);
    const id = await pending;
    const settled = client.onUpdate(api.messages.list, {}, () => {}).getCurrentValue();
    assert.ok(settled.some((m) => m._id === id && m.body === "fast"), "server's value");
    assert.ok(!settled.some((m) => m._id === "optimistic"), "optimistic value dropped");

    history.length = 0;
    const failing = client.mutation(api.messages.send, { body: "" }, {
      optimisticUpdate: (store) => optimisticUpdate(store, { body: "doomed" }),
    });
    await new Promise((r) => setImmediate(r));
    assert.ok(history.some((v) => v.some((m) => m.body === "doomed")), "optimistic failure shown");
    await assert.rejects(failing, (e) => e instanceof ConvexError && e.data.code === "EmptyMessage");
    await new Promise((r) => setTimeout(r, 20));
    const after = history[history.length - 1];
    assert.ok(!after.some((m) => m.body === "doomed"), "rolled back");
    assert.equal(after.length, before.length + 1);
    unsubscribe();
  } finally {
    await client.close();
  }
});
