// The fanout dashboard: plain DOM, no build step. Every piece of data reaches the page through
// textContent or an attribute set with setAttribute: a task name or a log line is text, never markup.

const STATES = ['succeeded', 'skipped', 'failed', 'running', 'cancelled', 'pending'];
const PAGE_SIZE = 50;
const LOG_POLL_MS = 1000;
const TABLE_REFRESH_MS = 2000;
/** Plots of a big run cost the server more; they follow a running run more calmly than the counts. */
const PLOTS_REFRESH_MS = 5000;
const SVG = 'http://www.w3.org/2000/svg';

const main = document.getElementById('main');
const where = document.getElementById('where');
/** Whatever the current view left running (event stream, timers); stopped on navigation. */
let cleanups = [];
/** Bumped on navigation: an answer that arrives for a view already left is dropped. */
let viewNumber = 0;

window.addEventListener('hashchange', route);
route();

function route() {
  for (const cleanup of cleanups.splice(0)) cleanup();
  viewNumber++;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'runs' && /^\d+$/.test(parts[1] ?? '')) {
    const task = parts[2] === 'tasks' && parts.length >= 4 ? parts.slice(3).join('/') : null;
    showRun(Number(parts[1]), task).catch(showError);
  } else {
    showRuns().catch(showError);
  }
}

// ---------- small helpers ----------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(`/api${path}`, { credentials: 'same-origin', ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.fix ? `${body.error}; ${body.fix}` : body.error || `HTTP ${response.status}`);
  return body;
}

function showError(error) {
  main.replaceChildren(el('p', { class: 'error', id: 'error' }, String(error.message ?? error)));
}

function bytes(value) {
  if (value === null || value === undefined) return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)}s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

const dash = (value) => (value === null || value === undefined ? '-' : String(value));
const when = (iso) => (iso ? iso.replace('T', ' ').slice(0, 19) : '-');
const runDuration = (run) => duration((run.endedAt ? Date.parse(run.endedAt) : Date.now()) - Date.parse(run.createdAt));
const stateCell = (state) => el('td', { class: `state state-${state}` }, dash(state));

// ---------- runs ----------

const RUNS_REFRESH_MS = 2000;

async function showRuns() {
  where.textContent = 'runs';
  await renderRuns();
  // New runs appear, and their counts move, without a reload.
  const timer = setInterval(() => renderRuns().catch(() => {}), RUNS_REFRESH_MS);
  cleanups.push(() => clearInterval(timer));
}

async function renderRuns() {
  const mine = viewNumber;
  const runs = await api('/runs');
  if (mine !== viewNumber) return;
  const rows = runs.map((run) =>
    el(
      'tr',
      { class: 'clickable', 'data-run': run.run, onclick: () => (location.hash = `#/runs/${run.run}`) },
      el('td', {}, el('a', { href: `#/runs/${run.run}` }, String(run.run))),
      el('td', { class: 'name' }, run.job),
      el('td', {}, run.backend),
      stateCell(run.state),
      el('td', {}, `${run.counts.succeeded + run.counts.skipped}/${run.total}`),
      el('td', {}, String(run.counts.failed)),
      el('td', {}, when(run.createdAt)),
      el('td', {}, runDuration(run)),
    ),
  );
  main.replaceChildren(
    el('h1', {}, 'Runs'),
    runs.length === 0
      ? el('p', { class: 'quiet' }, 'No runs in this store yet: start one with fanout run job.yaml.')
      : el(
          'table',
          { id: 'runs' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ['Run', 'Job', 'Backend', 'State', 'Done', 'Failed', 'Started (UTC)', 'Duration'].map((h) => el('th', {}, h)),
            ),
          ),
          el('tbody', {}, rows),
        ),
  );
}

// ---------- one run ----------

async function showRun(runId, openTask) {
  const mine = viewNumber;
  // The status and the first table page are asked for together: the page shows both at once.
  const [status, firstPage] = await Promise.all([api(`/runs/${runId}`), api(`/runs/${runId}/tasks?page=0&size=${PAGE_SIZE}&sort=index`)]);
  if (mine !== viewNumber) return;
  where.textContent = `run ${runId}`;
  const view = { runId, state: '', q: '', sort: 'index', page: 0, status };

  const bar = el('div', { class: 'bar', id: 'progress', role: 'progressbar' });
  const counts = el('div', { class: 'counts', id: 'counts' });
  const summary = el('div', { id: 'summary', class: 'quiet' });
  const message = el('div', { id: 'message' });
  const buttons = {
    cancel: el('button', { class: 'action', id: 'cancel', onclick: () => act('cancel') }, 'Cancel run'),
    retry: el('button', { class: 'action', id: 'retry', onclick: () => act('retry') }, 'Retry failed'),
    gather: el('button', { class: 'action', id: 'gather', onclick: () => act('gather') }, 'Run gather'),
  };
  const stateFilter = el(
    'select',
    {
      id: 'state-filter',
      onchange: () => {
        view.state = stateFilter.value;
        view.page = 0;
        loadTasks();
      },
    },
    el('option', { value: '' }, 'all states'),
    STATES.map((s) => el('option', { value: s }, s)),
  );
  const search = el('input', { id: 'search', type: 'search', placeholder: 'search names' });
  let searchTimer;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      view.q = search.value;
      view.page = 0;
      loadTasks();
    }, 250);
  });
  const prev = el(
    'button',
    {
      class: 'action',
      id: 'prev',
      onclick: () => {
        view.page--;
        loadTasks();
      },
    },
    '‹ Prev',
  );
  const next = el(
    'button',
    {
      class: 'action',
      id: 'next',
      onclick: () => {
        view.page++;
        loadTasks();
      },
    },
    'Next ›',
  );
  const pageInfo = el('span', { id: 'page-info', class: 'quiet' });
  const tbody = el('tbody', {});
  const columns = [
    ['name', 'Name'],
    ['state', 'State'],
    ['attempts', 'Attempts'],
    [null, 'Reason'],
    [null, 'Exit'],
    ['memory', 'Requested'],
    ['peakMemory', 'Peak memory'],
    ['duration', 'Duration'],
    [null, 'Host'],
  ];
  const head = el(
    'tr',
    {},
    columns.map(([key, label]) => el('th', {}, key ? el('button', { onclick: () => sortBy(key) }, label) : label)),
  );
  const detail = el('section', { id: 'task-detail' });
  const plots = el('div', { class: 'plots', id: 'plots' });

  main.replaceChildren(
    el('h1', {}, el('span', { id: 'job' }, status.job), ' ', el('span', { class: 'quiet' }, `run ${runId} · ${status.backend}`)),
    bar,
    counts,
    summary,
    el('div', { class: 'toolbar' }, buttons.cancel, buttons.retry, buttons.gather, message),
    el('h2', {}, 'Tasks'),
    el('div', { class: 'toolbar' }, stateFilter, search, prev, next, pageInfo),
    el('table', { id: 'tasks' }, el('thead', {}, head), tbody),
    detail,
    el('h2', {}, 'Plots'),
    plots,
  );

  function render(s) {
    // What an action answered ("retry: retrying") is stale once the run it set going has ended.
    if (view.status?.state === 'running' && s.state !== 'running' && message.className !== 'error') message.textContent = '';
    view.status = s;
    bar.replaceChildren(
      ...STATES.filter((state) => s.counts[state] > 0).map((state) => {
        const part = el('div', { class: state, title: `${s.counts[state]} ${state}` });
        // Through CSSOM: the page's Content-Security-Policy refuses style attributes.
        part.style.width = `${(100 * s.counts[state]) / Math.max(1, s.total)}%`;
        return part;
      }),
    );
    counts.replaceChildren(
      el('span', { 'data-state': 'total' }, `${s.total} tasks`),
      ...STATES.map((state) => el('span', { 'data-state': state, class: `state-${state}` }, `${s.counts[state]} ${state}`)),
    );
    summary.textContent = `${s.state} · started ${when(s.createdAt)} UTC · ${runDuration(s)}${s.gather ? ` · gather ${s.gather}` : ''}`;
    summary.setAttribute('data-run-state', s.state);
    buttons.cancel.disabled = s.state !== 'running';
    buttons.retry.disabled = s.counts.failed === 0;
    buttons.gather.disabled = s.state === 'running' || s.counts.succeeded + s.counts.skipped !== s.total;
  }

  async function act(action) {
    message.className = '';
    message.textContent = `${action}…`;
    try {
      const answer = await api(`/runs/${runId}/${action}`, { method: 'POST' });
      message.textContent = `${action}: ${answer.outcome}`;
    } catch (error) {
      message.className = 'error';
      message.textContent = error.message;
    }
  }

  function sortBy(key) {
    view.sort = view.sort === key ? `-${key}` : key;
    view.page = 0;
    loadTasks();
  }

  let loading = 0;
  async function loadTasks() {
    const mine = ++loading;
    const params = new URLSearchParams({ page: String(view.page), size: String(PAGE_SIZE), sort: view.sort });
    if (view.state) params.set('state', view.state);
    if (view.q) params.set('q', view.q);
    const page = await api(`/runs/${runId}/tasks?${params}`);
    if (mine !== loading) return; // a newer request answers instead
    showTasks(page);
  }

  function showTasks(page) {
    tbody.replaceChildren(
      ...page.tasks.map((task) =>
        el(
          'tr',
          { class: 'clickable', 'data-task': task.name, onclick: () => (location.hash = `#/runs/${runId}/tasks/${encodeURIComponent(task.name)}`) },
          el('td', { class: 'name', title: task.name }, task.name),
          stateCell(task.state),
          el('td', {}, String(task.attempts)),
          el('td', {}, dash(task.reason)),
          el('td', {}, dash(task.exitCode)),
          el('td', {}, bytes(task.memory)),
          el('td', {}, bytes(task.peakMemory)),
          el('td', {}, duration(task.durationMs)),
          el('td', {}, dash(task.host)),
        ),
      ),
    );
    const pages = Math.max(1, Math.ceil(page.total / page.size));
    pageInfo.textContent = `${page.total} tasks · page ${page.page + 1} of ${pages}`;
    prev.disabled = page.page === 0;
    next.disabled = page.page + 1 >= pages;
  }

  render(status);
  showTasks(firstPage);
  // For bench/ui.mjs: when the run page first showed its counts and task table.
  if (!performance.getEntriesByName('fanout:run-page-shown').length) performance.mark('fanout:run-page-shown');

  // Live: the server pushes the status when it changes; the table and plots follow at a calmer pace.
  const events = new EventSource(`/api/runs/${runId}/events`);
  let lastRefresh = Date.now();
  let lastPlots = Date.now();
  let shown = JSON.stringify(status);
  events.addEventListener('status', (event) => {
    if (event.data === shown) return; // the first event repeats what the page shows
    shown = event.data;
    const s = JSON.parse(event.data);
    render(s);
    if (Date.now() - lastRefresh > TABLE_REFRESH_MS || s.state !== 'running') {
      lastRefresh = Date.now();
      loadTasks().catch(() => {});
      refreshTask().catch(() => {});
    }
    if (Date.now() - lastPlots > PLOTS_REFRESH_MS || s.state !== 'running') {
      lastPlots = Date.now();
      loadPlots().catch(() => {});
    }
  });
  cleanups.push(() => events.close());

  async function loadPlots() {
    drawPlots(plots, await api(`/runs/${runId}/plots`));
  }
  loadPlots().catch(() => {});
  // The open task follows the run too: a new attempt (a retry) or its end redraws it.
  let taskView = null;
  async function openTaskView() {
    taskView?.stop();
    taskView = await showTask(detail, runId, openTask);
  }
  async function refreshTask() {
    if (!taskView) return;
    const attempts = await api(`/runs/${runId}/tasks/${encodeURIComponent(openTask)}/attempts`);
    if (attemptsSignature(attempts) !== taskView.signature) await openTaskView();
  }
  if (openTask !== null) {
    openTaskView().catch((error) => detail.replaceChildren(el('p', { class: 'error' }, error.message)));
    cleanups.push(() => taskView?.stop());
  }
}

const attemptsSignature = (attempts) => attempts.map((a) => `${a.attempt}:${a.state}`).join(',');

// ---------- one task ----------

async function showTask(detail, runId, name) {
  const [task, attempts] = await Promise.all([api(`/runs/${runId}/tasks/${encodeURIComponent(name)}`), api(`/runs/${runId}/tasks/${encodeURIComponent(name)}/attempts`)]);
  const record = el('dl', { class: 'record', id: 'result-record' });
  const log = el('pre', { class: 'log', id: 'log' });
  const logNote = el('div', { class: 'quiet', id: 'log-note' });
  let chosen = attempts.at(-1);
  let stream = 'stdout';
  const attemptPicker = el(
    'select',
    {
      id: 'attempt',
      onchange: () => {
        chosen = attempts.find((a) => String(a.attempt) === attemptPicker.value);
        showAttempt();
      },
    },
    attempts.map((a) => el('option', { value: a.attempt, selected: a === chosen }, `attempt ${a.attempt} (${a.reason ?? a.state})`)),
  );
  const streamPicker = el(
    'select',
    {
      id: 'stream',
      onchange: () => {
        stream = streamPicker.value;
        showAttempt();
      },
    },
    el('option', { value: 'stdout' }, 'stdout'),
    el('option', { value: 'stderr' }, 'stderr'),
  );
  const close = el('a', { href: `#/runs/${runId}` }, 'close');

  detail.replaceChildren(
    el('h2', {}, 'Task ', el('span', { id: 'task-name' }, task.name), ' ', el('span', { class: `state state-${task.state}` }, dash(task.state)), ' ', close),
    attempts.length === 0 ? el('p', { class: 'quiet' }, 'No attempts yet.') : el('div', { class: 'toolbar' }, attemptPicker, streamPicker),
    record,
    logNote,
    log,
  );
  const view = { signature: attemptsSignature(attempts), stop: () => {} };
  if (attempts.length === 0) return view;

  let timer;
  let generation = 0;
  view.stop = () => {
    generation++;
    clearTimeout(timer);
  };

  function showAttempt() {
    clearTimeout(timer);
    const mine = ++generation;
    const a = chosen;
    record.replaceChildren(
      ...[
        ['attempt', a.attempt],
        ['state', a.state],
        ['reason', a.reason],
        ['exit code', a.exitCode],
        ['signal', a.signal],
        ['error', a.error],
        ['launched', when(a.launchedAt)],
        ['started', when(a.startedAt)],
        ['ended', when(a.endedAt)],
        ['duration', a.startedAt && a.endedAt ? duration(Date.parse(a.endedAt) - Date.parse(a.startedAt)) : null],
        ['memory requested', bytes(a.memory)],
        ['peak memory', bytes(a.peakMemory)],
        ['cpu time', a.cpuMs === null ? null : duration(a.cpuMs)],
        ['host', a.host],
        ['worker', a.worker],
        // Only for a run in a container: which image, and its content identity when the run was planned.
        ...(a.image === null
          ? []
          : [
              ['image', a.image],
              ['image digest', a.imageDigest],
            ]),
      ].flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, dash(value))]),
    );
    log.textContent = '';
    let offset = null;
    let startOffset = null;
    const follow = async () => {
      const params = new URLSearchParams({ stream });
      if (offset !== null) params.set('offset', String(offset));
      const piece = await api(`/runs/${runId}/tasks/${encodeURIComponent(name)}/attempts/${a.attempt}/log?${params}`);
      if (mine !== generation) return;
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      if (piece.text) log.append(document.createTextNode(piece.text));
      if (atBottom) log.scrollTop = log.scrollHeight;
      offset = piece.nextOffset;
      if (startOffset === null && piece.found) startOffset = piece.offset;
      const cut = startOffset > 0 ? `the log from byte ${startOffset} on (its last part)` : '';
      logNote.textContent = !piece.found ? 'No log yet.' : piece.running ? ['following…', cut].filter(Boolean).join(' · ') : cut;
      // Follow while it runs; a finished log is read to its end.
      if (piece.running || piece.text.length > 0) timer = setTimeout(() => follow().catch(() => {}), piece.running ? LOG_POLL_MS : 0);
    };
    follow().catch((error) => (logNote.textContent = error.message));
  }
  showAttempt();
  detail.scrollIntoView({ block: 'nearest' });
  return view;
}

// ---------- plots ----------

function drawPlots(container, plots) {
  container.replaceChildren(
    plotBox('Tasks done over time, and attempts running', 'plot-timeline', timelinePlot(plots.timeline)),
    plotBox('Durations of tasks that succeeded', 'plot-durations', histogramPlot(plots.durations)),
    plotBox('Requested vs peak memory per attempt', 'plot-memory', memoryPlot(plots.memory), plots.memory.overAsked ?? plots.memory.note),
  );
}

function plotBox(title, id, chart, sentence) {
  return el('div', { class: 'plot', id }, el('h3', {}, title), sentence ? el('p', { class: 'sentence', id: 'over-asked' }, sentence) : null, chart);
}

const W = 360,
  H = 180,
  PAD = 34;

function frame() {
  const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(svg('line', { x1: PAD, y1: H - PAD, x2: W - 8, y2: H - PAD, stroke: '#999' }), svg('line', { x1: PAD, y1: 8, x2: PAD, y2: H - PAD, stroke: '#999' }));
  return root;
}

function empty(root, text) {
  root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, text));
  return root;
}

function timelinePlot(points) {
  const root = frame();
  if (points.length < 2) return empty(root, 'nothing has run yet');
  const t0 = points[0].at,
    t1 = points.at(-1).at;
  const top = Math.max(1, ...points.map((p) => Math.max(p.done, p.running)));
  const x = (t) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD - 8);
  const y = (v) => H - PAD - (v / top) * (H - PAD - 8);
  const line = (key, color) =>
    svg('polyline', {
      fill: 'none',
      stroke: color,
      'stroke-width': 2,
      points: points.map((p) => `${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' '),
      class: `series-${key}`,
    });
  root.append(line('done', '#2e7d32'), line('running', '#1565c0'));
  root.append(svg('text', { x: PAD - 4, y: 14, 'text-anchor': 'end' }, top), svg('text', { x: W - 8, y: H - PAD + 14, 'text-anchor': 'end' }, duration(t1 - t0)));
  root.append(svg('text', { x: PAD + 6, y: 16, fill: '#2e7d32' }, 'done'), svg('text', { x: PAD + 46, y: 16, fill: '#1565c0' }, 'running'));
  return root;
}

function histogramPlot(bins) {
  const root = frame();
  if (bins.length === 0) return empty(root, 'no task has succeeded yet');
  const top = Math.max(...bins.map((b) => b.count));
  const width = (W - PAD - 8) / bins.length;
  bins.forEach((bin, i) => {
    const height = (bin.count / top) * (H - PAD - 8);
    const bar = svg('rect', { x: PAD + i * width + 1, y: H - PAD - height, width: Math.max(1, width - 2), height, fill: '#6a8caf', class: 'bin' });
    bar.append(svg('title', {}, `${duration(bin.fromMs)}–${duration(bin.toMs)}: ${bin.count}`));
    root.append(bar);
  });
  root.append(
    svg('text', { x: PAD - 4, y: 14, 'text-anchor': 'end' }, top),
    svg('text', { x: PAD, y: H - PAD + 14 }, duration(bins[0].fromMs)),
    svg('text', { x: W - 8, y: H - PAD + 14, 'text-anchor': 'end' }, duration(bins.at(-1).toMs)),
  );
  return root;
}

function memoryPlot(memory) {
  if (memory.points.length === 0 && memory.unrequestedPeaks.length > 0) return peaksPlot(memory);
  const root = frame();
  if (memory.points.length === 0) return empty(root, 'no memory measured yet');
  const top = Math.max(1, ...memory.points.map((p) => Math.max(p.requested, p.peak)));
  const x = (v) => PAD + (v / top) * (W - PAD - 8);
  const y = (v) => H - PAD - (v / top) * (H - PAD - 8);
  // The diagonal: a task on it used all it asked for; far below it, it asked for more than it needed.
  root.append(svg('line', { x1: x(0), y1: y(0), x2: x(top), y2: y(top), stroke: '#ccc', 'stroke-dasharray': '4 3' }));
  for (const p of memory.points)
    root.append(svg('circle', { cx: x(p.requested).toFixed(1), cy: y(p.peak).toFixed(1), r: 2.5, fill: '#ef6c00', 'fill-opacity': 0.6, class: 'point' }));
  root.append(svg('text', { x: W - 8, y: H - PAD + 14, 'text-anchor': 'end' }, `requested, up to ${bytes(top)}`), svg('text', { x: PAD + 4, y: 14 }, 'peak'));
  return root;
}

/** Tasks that asked for no memory: their peaks alone. */
function peaksPlot(memory) {
  const root = frame();
  const peaks = memory.unrequestedPeaks;
  const top = Math.max(1, ...peaks);
  const width = (W - PAD - 8) / peaks.length;
  peaks.forEach((peak, i) => {
    const height = (peak / top) * (H - PAD - 8);
    root.append(svg('rect', { x: PAD + i * width, y: H - PAD - height, width: Math.max(0.5, width - 0.5), height, fill: '#ef6c00', class: 'peak' }));
  });
  root.append(
    svg('text', { x: PAD - 4, y: 14, 'text-anchor': 'end' }, bytes(top)),
    svg('text', { x: W - 8, y: H - PAD + 14, 'text-anchor': 'end' }, 'attempts (no memory requested)'),
  );
  return root;
}
