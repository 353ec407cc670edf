import type { IncomingMessage, ServerResponse } from 'node:http';
import { attemptJson, statusJson, taskRowJson } from '../run-json.js';
import type { Engine } from '../engine/engine.js';
import { taskImageIdentity } from '../engine/plan-job.js';
import { UserError } from '../errors.js';
import type { AttemptFiles } from '../storage/attempt-files.js';
import { TASK_STATES, type AttemptRecord, type GatherAttemptRecord, type RunRecord, type TaskState } from '../store/records.js';
import { TASK_SORTS, type TaskSort } from '../store/task-page.js';
import type { RunActions } from './run-actions.js';
import type { RunEvents } from './run-events.js';
import type { PlotCache } from './run-plots.js';

/**
 * The HTTP API under /api/, the one the page uses. Shapes are those of the CLI's `--json`
 * (runs, status, tasks), so a script can use either. Paths name runs, tasks and attempts as the
 * store knows them; a log is found from the attempt's recorded folder, never from a path in
 * the request.
 */
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;

/** A refusal with the HTTP status it maps to; its message (and fix) go back as JSON. */
export class ApiError extends UserError {
  constructor(
    readonly status: number,
    message: string,
    fix?: string,
  ) {
    super(message, fix);
  }
}

export interface ApiContext {
  engine: Engine;
  /** Where attempts' logs are read from, whatever their workdir. */
  files: AttemptFiles;
  actions: RunActions;
  plots: PlotCache;
  events: RunEvents;
}

export async function handleApi(context: ApiContext, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
  const segments = url.pathname.split('/').slice(2).map(decodeSegment);
  const method = request.method ?? 'GET';
  const { engine, actions } = context;

  if (segments[0] !== 'runs') throw new ApiError(404, `no API at ${url.pathname}`, 'see the Dashboard section of the README');
  if (segments.length === 1) {
    allow(method, 'GET');
    const runs = [];
    const records = await engine.store.listRuns();
    const unattended = await engine.unattended(records);
    for (const run of records) runs.push(statusJson(run, await engine.store.counts(run.id), unattended.get(run.id) ?? null));
    return sendJson(response, runs);
  }
  const run = await findRun(engine, segments[1]!);
  const [, , part, name, sub, number, leaf] = segments;

  if (part === undefined) {
    allow(method, 'GET');
    return sendJson(response, statusJson(run, await engine.store.counts(run.id), (await engine.unattended([run])).get(run.id) ?? null));
  }
  if (part === 'events' && segments.length === 3) {
    allow(method, 'GET');
    return context.events.stream(run.id, response);
  }
  if (part === 'plots' && segments.length === 3) {
    allow(method, 'GET');
    const statusKey = JSON.stringify([run.state, run.gatherState, await engine.store.counts(run.id)]);
    return sendJson(response, await context.plots.get(run.id, statusKey, run.state === 'running', () => engine.store.attemptSpans(run.id)));
  }
  if ((part === 'cancel' || part === 'retry' || part === 'gather') && segments.length === 3) {
    allow(method, 'POST');
    const outcome = part === 'cancel' ? await actions.cancel(run) : part === 'retry' ? await actions.retryFailed(run) : await actions.gather(run);
    return sendJson(response, { run: run.id, action: part, outcome }, 202);
  }
  if (part === 'tasks' && name === undefined) {
    allow(method, 'GET');
    const query = taskQuery(url.searchParams);
    const page = await engine.store.pageTasks(run.id, query);
    return sendJson(response, { total: page.total, page: query.page, size: query.limit, tasks: page.tasks.map((task) => taskRowJson(task, run.spec)) });
  }
  if (part === 'tasks' && name !== undefined) {
    allow(method, 'GET');
    const attempts = await taskAttempts(engine, run, name);
    const task = await engine.store.getTask(run.id, name);
    if (sub === undefined) {
      return sendJson(response, task ? taskRowJson({ ...task, host: attempts.at(-1)?.host ?? null }, run.spec) : { name: 'gather', state: run.gatherState });
    }
    if (sub === 'attempts' && number === undefined) {
      const image = task ? taskImageIdentity(run.spec, task) : null;
      return sendJson(
        response,
        attempts.map((attempt) => attemptJson(attempt, image)),
      );
    }
    if (sub === 'attempts' && number !== undefined && leaf === 'log' && segments.length === 7) {
      const attempt = attempts.find((a) => String(a.attempt) === number);
      if (!attempt) throw new ApiError(404, `task "${name}" of run ${run.id} has no attempt ${number}`, `it has ${attempts.length}`);
      const stream = url.searchParams.get('stream') ?? 'stdout';
      if (stream !== 'stdout' && stream !== 'stderr') throw new ApiError(400, `stream=${stream} is not a log`, 'use stream=stdout or stream=stderr');
      const offsetText = url.searchParams.get('offset');
      const offset = offsetText === null ? undefined : wholeNumber(offsetText, 'offset');
      const piece = await context.files.readLogPiece(attempt.dir, stream, { offset });
      return sendJson(response, { ...piece, running: attempt.state === 'running' });
    }
  }
  throw new ApiError(404, `no API at ${url.pathname}`, 'see the Dashboard section of the README');
}

export function sendJson(response: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** A run by id or job name (its latest run), as the CLI resolves it: one rule, in the engine. */
async function findRun(engine: Engine, ref: string): Promise<RunRecord> {
  try {
    return await engine.resolveRun(ref);
  } catch (error) {
    if (error instanceof UserError) throw new ApiError(404, `no run ${JSON.stringify(ref)}`, 'GET /api/runs lists the runs');
    throw error;
  }
}

/** A task's attempts (for a task skipped as done, those whose work it reused); `gather` names the gather. */
async function taskAttempts(engine: Engine, run: RunRecord, name: string): Promise<Array<AttemptRecord | GatherAttemptRecord>> {
  const attempts = await engine.attemptsNamed(run, name);
  if (attempts) return attempts;
  throw new ApiError(404, `run ${run.id} has no task ${JSON.stringify(name)}`, `GET /api/runs/${run.id}/tasks?q=... searches by name`);
}

function taskQuery(params: URLSearchParams) {
  const state = params.get('state') || undefined;
  if (state !== undefined && !TASK_STATES.includes(state as TaskState)) {
    throw new ApiError(400, `state=${state} is not a task state`, `use one of ${TASK_STATES.join(', ')}`);
  }
  let sort = params.get('sort') || 'index';
  const descending = sort.startsWith('-');
  if (descending) sort = sort.slice(1);
  if (!TASK_SORTS.includes(sort as TaskSort))
    throw new ApiError(400, `sort=${sort} is not a column to sort by`, `use one of ${TASK_SORTS.join(', ')}, with - in front for descending`);
  const page = params.has('page') ? wholeNumber(params.get('page')!, 'page') : 0;
  const limit = params.has('size') ? wholeNumber(params.get('size')!, 'size') : DEFAULT_PAGE_SIZE;
  if (limit < 1 || limit > MAX_PAGE_SIZE) throw new ApiError(400, `size=${limit} is out of range`, `use 1 to ${MAX_PAGE_SIZE}`);
  return { state: state as TaskState | undefined, nameContains: params.get('q') || undefined, sort: sort as TaskSort, descending, page, limit, offset: page * limit };
}

function wholeNumber(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new ApiError(400, `${name}=${text} is not a whole number`, `give ${name} as 0, 1, 2, ...`);
  return Number(text);
}

function allow(method: string, allowed: 'GET' | 'POST'): void {
  if (method !== allowed) throw new ApiError(405, `${method} is not allowed here`, allowed === 'POST' ? 'actions are POST requests' : 'use GET');
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, `the path segment ${JSON.stringify(segment)} is not valid percent-encoding`);
  }
}
