/**
 * The widget wire protocol: a mirror of `convex_lab/jupyter/_protocol.py`.
 *
 * State lives in synced traits; actions are requests `{type, id, ...}` sent with `model.send`,
 * each answered by one `Response` with the same id. Bump PROTOCOL_VERSION with the Python side.
 */

export const PROTOCOL_VERSION = 2;

/** Display JSON of a Convex value: plain JSON plus one-key tagged objects (see TaggedValue). */
export type Wire = null | boolean | number | string | Wire[] | { [key: string]: Wire };

/** `{"$int64": "5"}`, `{"$bytes": "<base64>"}`, `{"$float": "NaN"|"Infinity"|"-Infinity"|"-0"}`,
 * `{"$repr": "..."}` (a non-Convex value, display only). */
export type TaggedValue =
  | { $int64: string }
  | { $bytes: string }
  | { $float: "NaN" | "Infinity" | "-Infinity" | "-0" }
  | { $repr: string };

export interface WireError {
  name: string;
  message: string;
  code?: string;
  data?: Wire;
}

export interface Response {
  type: "response";
  id: string;
  ok: boolean;
  result?: Wire;
  error?: WireError;
}

export type Status = "loading" | "ready" | "error" | "closed";

export type ViewName = "live_query" | "paginated" | "data_browser" | "function_runner" | "logs" | "jobs" | "crons" | "search_box" | "upload" | "upload_previews";

export interface FilterSpec {
  field: string;
  value: Wire;
}

/** Requests, by view. `id` is added by the RPC layer. */
export type Request =
  | { type: "run"; path: string; args: { [key: string]: Wire } }
  | { type: "refresh" }
  | {
      type: "browse";
      table: string;
      index?: string;
      order?: "asc" | "desc";
      filter?: FilterSpec | null;
      page_size?: number;
    }
  | { type: "sort"; field: string; order?: "asc" | "desc" }
  | { type: "page"; direction: "next" | "prev" | "first" }
  | { type: "edit"; doc_id: string; field: string; value?: Wire; unset?: boolean }
  | { type: "delete"; doc_id: string }
  | { type: "load_more"; num_items?: number }
  | { type: "clear" }
  | { type: "cancel"; job_id: string };

/** A validator's `to_json()` (convex-js's JSON form of validators). */
export type ValidatorJson =
  | { type: "string" | "number" | "bigint" | "boolean" | "null" | "bytes" | "any" }
  | { type: "id"; tableName: string }
  | { type: "literal"; value: Wire }
  | { type: "array"; value: ValidatorJson }
  | { type: "object"; value: { [field: string]: FieldJson } }
  | { type: "record"; keys: ValidatorJson; values: FieldJson }
  | { type: "union"; value: ValidatorJson[] };

export interface FieldJson {
  fieldType: ValidatorJson;
  optional: boolean;
  /** A pydantic field's JSON-schema limits (`v.from_pydantic`): minimum, maxLength, pattern, … */
  constraints?: { [keyword: string]: Wire };
  description?: string;
  default?: Wire;
}

export interface FunctionInfo {
  path: string;
  kind: "query" | "mutation" | "action";
  visibility: "public" | "internal";
  args: ValidatorJson | null;
}

export interface TableInfo {
  name: string;
  count: number;
}

export interface IndexInfo {
  name: string;
  fields: string[];
}

export interface LogRow {
  function: string;
  kind: string;
  lines: string[];
  error: string | null;
  started: number;
  duration_ms: number;
}

export type JobState = "pending" | "inProgress" | "success" | "failed" | "canceled";

/** One `_scheduled_functions` document (jobs view, newest first). */
export interface JobRow {
  id: string;
  name: string;
  creationTime: number;
  scheduledTime: number;
  completedTime: number | null;
  state: JobState;
  error: string | null;
  args: Wire;
}

/** One cron (crons view). */
export interface CronRow {
  name: string;
  function: string;
  schedule: Wire;
  schedule_text: string;
  nextRun: number;
  lastRun: { scheduledTime: number; completedTime: number | null; state: JobState; error: string | null } | null;
}

/** Traits every view has. */
export interface BaseState {
  _view: ViewName;
  protocol_version: number;
  status: Status;
  error: WireError | null;
  version: number;
  updated_at: number | null;
}
