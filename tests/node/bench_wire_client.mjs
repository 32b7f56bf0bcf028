// benchmarks/bench_wire.py's client: `node bench_wire_client.mjs mutation|echo URL N`
// prints {"p50_ms": ..., "samples": N}: the npm ConvexClient's mutation round trip (sent ->
// resolved, which waits for the transition), or a WebSocket echo round trip with `ws`.
import { ConvexClient } from "convex/browser";
import WebSocket from "ws";

const [mode, url, nText] = process.argv.slice(2);
const n = Number(nText);
const times = [];

if (mode === "mutation") {
  const client = new ConvexClient(url);
  for (let i = 0; i < 50; i++) await client.mutation("counters:bump", { name: "warm" });
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.mutation("counters:bump", { name: "bench" });
    times.push(performance.now() - t0);
  }
  await client.close();
} else {
  const ws = new WebSocket(url);
  await new Promise((r) => ws.once("open", r));
  const once = () => new Promise((r) => ws.once("message", r));
  for (let i = 0; i < 50 + n; i++) {
    const t0 = performance.now();
    const got = once();
    ws.send(JSON.stringify({ type: "Ping", i }));
    await got;
    if (i >= 50) times.push(performance.now() - t0);
  }
  ws.close();
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ p50_ms: times[Math.floor(times.length / 2)], samples: times.length }));
process.exit(0);
