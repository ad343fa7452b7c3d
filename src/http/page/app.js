// duet's folder page (classic deferred script). The server drew the listing; this adds sorting,
// filtering, live changes, management and resumable uploads hashed by a worker on the way.
'use strict';

(() => { // one scope for the whole file; its body is not indented
const body = document.body;
const folder = body.dataset.path || ''; // decoded, from the store root: "" or "a/b/"
const PIECE = 8 << 20; // bytes per PATCH
const STALL = 30000; // ms without progress: the request is dropped and retried
const INTEROP = { 'Upload-Draft-Interop-Version': '6' };
const FINAL = ['done', 'failed', 'cancelled'];

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const enc = (path) => path.split('/').map(encodeURIComponent).join('/'); // slashes kept
const fileUrl = (path, dir) => '/files/' + enc(path) + (dir ? '/' : '');
const here = fileUrl(folder);
// Resolves after ms; rejects when signal aborts.
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
  });
}

// As the server writes it: "900 B", "1.2 KiB", "12 KiB".
function humanSize(n) {
  let i = 0;
  for (; n >= 1024 && i < 5; i++) n /= 1024;
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'][i];
}
const pad = (n) => String(n).padStart(2, '0');
function localTime(sec) {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const status = $('#status');
function say(text) {
  // The same sentence again: emptied first, or screen readers stay silent.
  const again = status.textContent === text;
  status.textContent = again ? '' : text;
  if (again) setTimeout(() => { status.textContent = text; }, 100);
}
// An error answer's sentence: {"error": ...}, or a problem's "title".
function sentence(res) {
  try {
    const j = JSON.parse(res.text);
    if (j.error || j.title) return String(j.error || j.title);
  } catch { /* not JSON */ }
  return `The server answered ${res.status}.`;
}
const explain = (err) => (err instanceof TypeError ? 'The server is unreachable.' : err.message);
const fault = (message, retry = false) => Object.assign(new Error(message), { retry });

// ---- the token and requests

let token = sessionStorage.getItem('duet-token') || '';
let asking = null; // the open question, for every request that meets a 401 meanwhile
class NeedToken extends Error {}

function askToken(wrong) {
  asking ??= question({
    title: 'Token needed',
    text: wrong ? 'That token is wrong. Enter the token again.'
      : 'This server needs a token to show and change its files.',
    input: { label: 'Token', type: 'password' },
    ok: 'Use this token',
  }).then((value) => {
    asking = null;
    if (!value) throw new NeedToken('A token is needed: reload the page to enter it.');
    token = value.trim();
    sessionStorage.setItem('duet-token', token);
  });
  return asking;
}

// fetch with the token; a 401 asks for it and tries again. Gives {status, ok, headers, text}:
// the body is read (an unread one shows as an aborted request), except a stream's.
async function api(method, url, { headers, body: data, signal, stream } = {}) {
  for (;;) {
    const sent = token;
    const auth = sent ? { Authorization: 'Bearer ' + sent } : {};
    headers = { ...headers, ...auth };
    const res = await fetch(url, { method, body: data, signal, headers });
    if (res.status === 401) {
      await res.text();
      if (token === sent) await askToken(sent !== '');
    } else if (stream && res.ok) {
      return res;
    } else {
      return { status: res.status, ok: res.ok, headers: res.headers, text: await res.text() };
    }
  }
}

// A modal question (showModal keeps focus inside, Escape closes): on OK the input's value,
// or '' without input; null on Cancel or Escape.
let dialogs = 0;
function question({ title, text, input, ok, danger }) {
  const id = 'q' + ++dialogs;
  const d = document.createElement('dialog');
  d.setAttribute('aria-labelledby', id + 't');
  if (text) d.setAttribute('aria-describedby', id + 'd');
  d.innerHTML = `<form method="dialog"><h2 id="${id}t">${esc(title)}</h2>` +
    (text ? `<p id="${id}d">${esc(text)}</p>` : '') +
    (input ? `<p><label for="${id}i">${esc(input.label)}</label><input id="${id}i" ` +
      `type="${input.type || 'text'}" autocomplete="off" spellcheck="false" required></p>` : '') +
    `<p class="dialog-buttons"><button value="ok" class="${danger ? 'danger' : 'primary'}">` +
    `${esc(ok)}</button> <button type="button">Cancel</button></p></form>`;
  const field = d.querySelector('input');
  const cancel = d.querySelector('[type=button]');
  if (field) field.value = input.value || '';
  const opener = document.activeElement;
  return new Promise((resolve) => {
    cancel.onclick = () => d.close();
    d.onclose = () => {
      d.remove();
      if (opener?.isConnected) opener.focus();
      resolve(d.returnValue === 'ok' ? (field ? field.value : '') : null);
    };
    body.append(d);
    d.showModal();
    if (field) field.select();
    else if (danger) cancel.focus(); // a destructive question starts on Cancel
  });
}

// ---- the listing

const table = $('#listing');
const tbody = table.tBodies[0];
let entries = new Map(); // name -> {name, type, size, sha256, mtime}
let order = []; // the entries as drawn
let rows = new Map(); // name -> <tr>
const nameOf = new WeakMap(); // <tr> -> name
let sortKey = 'name';
let sortDir = 1;
let filter = '';
let drawMs = 0;

// Folders first, then files, by the chosen column; names break ties.
function compare(a, b) {
  if (a.type !== b.type) return a.type === 'dir' ? -1 : 1;
  let c = sortKey === 'name' ? 0 : (a[sortKey] || 0) - (b[sortKey] || 0);
  if (!c) c = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  return c * sortDir;
}
const shown = (name) => !filter || name.toLowerCase().includes(filter);

// Rows are cloned from prototypes: for 1,000 rows twice as fast as parsing HTML (measured).
const protos = document.createElement('template');
protos.innerHTML = '<table><tr><td class="name"><a></a></td><td class="size"></td>' +
  '<td class="mtime"></td><td class="sha"></td><td class="actions">' +
  '<button type="button" data-act="move">Rename</button> ' +
  '<button type="button" class="danger" data-act="delete">Delete</button></td></tr></table>' +
  '<time></time><code></code><span class="pending">computing…</span>' +
  '<button type="button" data-act="copy">Copy</button>';
const [protoTable, timeProto, codeProto, pendingProto, copyProto] = protos.content.children;
const rowProto = protoTable.rows[0];
const actionsProto = rowProto.lastChild;
actionsProto.remove();

function makeRow(e) {
  const dir = e.type === 'dir';
  const tr = rowProto.cloneNode(true);
  const [name, size, mtime, sha] = tr.cells;
  tr.setAttribute('data-name', e.name);
  tr.setAttribute('data-type', e.type);
  if (!dir) tr.setAttribute('data-size', e.size);
  if (e.mtime != null) {
    tr.setAttribute('data-mtime', e.mtime);
    mtime.append(timeProto.cloneNode());
    mtime.firstChild.dateTime = new Date(e.mtime * 1000).toISOString().slice(0, 19) + 'Z';
  }
  if (e.sha256) {
    tr.setAttribute('data-sha256', e.sha256);
    sha.append(codeProto.cloneNode());
    sha.firstChild.title = e.sha256;
    sha.firstChild.textContent = e.sha256.slice(0, 12) + '…';
  }
  name.firstChild.href = here + encodeURIComponent(e.name) + (dir ? '/' : '');
  name.firstChild.textContent = dir ? e.name + '/' : e.name;
  size.textContent = dir ? '—' : humanSize(e.size);
  addControls(tr, e);
  return tr;
}

// What the server's rows lack: local time, the copy button and the row's buttons.
function addControls(tr, e) {
  const sha = tr.lastElementChild;
  const time = sha.previousElementSibling.firstElementChild;
  if (time) {
    time.title = time.dateTime;
    time.textContent = localTime(e.mtime);
  }
  if (e.type === 'file' && e.sha256) {
    const copy = copyProto.cloneNode(true);
    copy.setAttribute('aria-label', 'Copy SHA-256 of ' + e.name);
    sha.append(' ', copy);
  } else if (e.type === 'file') {
    sha.append(pendingProto.cloneNode(true));
  }
  const actions = actionsProto.cloneNode(true);
  actions.firstChild.setAttribute('aria-label', 'Rename or move ' + e.name);
  actions.lastChild.setAttribute('aria-label', 'Delete ' + e.name);
  tr.append(actions);
  nameOf.set(tr, e.name);
}

// Focus in a row as (name, control), to put back on its new row.
function focusIn(tr) {
  const el = document.activeElement;
  return tr?.contains(el) ? { name: nameOf.get(tr), act: el.dataset.act } : null;
}
function refocus(at) {
  const tr = at && rows.get(at.name);
  if (tr && !tr.hidden) tr.querySelector(at.act ? `[data-act="${at.act}"]` : 'a')?.focus();
}
function setEntries(list, t0) {
  entries = new Map(list.map((e) => [e.name, e]));
  order = [...entries.values()].sort(compare);
  drawMs = performance.now() - t0;
}

// The whole table, built in a fragment and put in at once.
function drawAll(list) {
  const t0 = performance.now();
  const at = focusIn(document.activeElement?.closest?.('#listing tbody tr'));
  setEntries(list, t0);
  rows = new Map(order.map((e) => [e.name, makeRow(e)]));
  for (const [name, tr] of rows) tr.hidden = !shown(name);
  tbody.replaceChildren(...rows.values());
  refocus(at);
  drawMs = performance.now() - t0;
}

// The server's rows, completed in place: half the work of drawing them again.
function adoptRows() {
  const t0 = performance.now();
  const list = [];
  for (const tr of [...tbody.rows]) {
    const get = (a) => tr.getAttribute('data-' + a);
    if (get('name') == null || tr.cells.length !== 4) {
      tr.remove(); // unknown shape: the JSON listing brings it back
      continue;
    }
    const e = { name: get('name'), type: get('type') === 'dir' ? 'dir' : 'file' };
    if (get('mtime')) e.mtime = Number(get('mtime'));
    if (e.type === 'file') Object.assign(e, { size: Number(get('size')), sha256: get('sha256') });
    addControls(tr, e);
    rows.set(e.name, tr);
    list.push(e);
  }
  setEntries(list, t0);
  if (order.some((e, i) => e !== list[i])) tbody.append(...order.map((e) => rows.get(e.name)));
}

// One row added or replaced where it sorts, keeping focus if it was on it.
function upsert(e) {
  const old = entries.get(e.name);
  if (old) order.splice(order.indexOf(old), 1);
  const oldTr = rows.get(e.name);
  const at = focusIn(oldTr);
  const next = order.find((x) => compare(x, e) > 0);
  order.splice(next ? order.indexOf(next) : order.length, 0, e);
  entries.set(e.name, e);
  const tr = makeRow(e);
  tr.hidden = !shown(e.name);
  tbody.insertBefore(tr, next ? rows.get(next.name) : null);
  oldTr?.remove();
  rows.set(e.name, tr);
  refocus(at);
}

function removeEntry(name) {
  const e = entries.get(name);
  if (!e) return;
  const i = order.indexOf(e);
  order.splice(i, 1);
  entries.delete(name);
  const tr = rows.get(name);
  rows.delete(name);
  const hadFocus = tr.contains(document.activeElement);
  tr.remove();
  if (hadFocus) {
    // To the row that took its place (or one before), else to the filter.
    const next = [...order.slice(i), ...order.slice(0, i).reverse()]
      .map((x) => rows.get(x.name)).find((r) => !r.hidden);
    (next ? next.querySelector('a') : $('#filter')).focus();
  }
}

const same = (a, b) => a && a.type === b.type && a.size === b.size && a.mtime === b.mtime &&
  (a.sha256 || null) === (b.sha256 || null);

// The table brought to list, row by row when few changed: the other rows stay as they are
// (focus, a pointer on its way, a screen reader's place).
function sync(list) {
  const fresh = new Set(list.map((e) => e.name));
  const changed = list.filter((e) => !same(entries.get(e.name), e));
  const gone = [...entries.keys()].filter((name) => !fresh.has(name));
  if (!entries.size || changed.length + gone.length > 200) return drawAll(list);
  gone.forEach(removeEntry);
  changed.forEach(upsert);
}

function sortBy(key) {
  const t0 = performance.now();
  if (sortKey === key) sortDir = -sortDir;
  else [sortKey, sortDir] = [key, 1];
  order.sort(compare);
  tbody.append(...order.map((e) => rows.get(e.name))); // the same rows, moved
  drawMs = performance.now() - t0;
  markSort();
}
function markSort() {
  for (const th of table.tHead.rows[0].cells) {
    if (th.dataset.key !== sortKey) th.removeAttribute('aria-sort');
    else th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
  }
}

// The listing. Events arriving meanwhile are applied again after it: an older answer never
// undoes a newer change.
let loading = null;
let again = false;
let replay = null;
function loadListing() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      do {
        again = false;
        replay = [];
        const res = await api('GET', here, { headers: { Accept: 'application/json' } });
        if (!res.ok) throw fault(sentence(res), res.status >= 500);
        const missed = replay;
        replay = null;
        sync(JSON.parse(res.text));
        missed.forEach(([type, data]) => applyEvent(type, data));
        $('#auth-needed')?.remove();
        $('#more')?.remove(); // the server's note that its listing was cut short
      } while (again);
    } finally {
      loading = replay = null;
    }
  })();
  return loading;
}
let refreshTimer = 0;
function refreshSoon(ms = 150) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadListing().catch((err) => say(explain(err))), ms);
}

// ---- live changes: Server-Sent Events, read with fetch to send the token

// A direct child's name, or null for a path elsewhere.
function childName(path) {
  const rest = typeof path === 'string' && path.startsWith(folder) &&
    path.slice(folder.length).replace(/\/+$/, '');
  return rest && !rest.includes('/') ? rest : null;
}

function applyEvent(type, data) {
  replay?.push([type, data]);
  const name = childName(data.name);
  if ((type === 'created' || type === 'replaced') && name) {
    upsert({ ...data, name, type: data.type === 'dir' ? 'dir' : 'file' });
  } else if (type === 'deleted' && name) {
    removeEntry(name);
  } else if (type === 'moved') {
    const from = childName(data.from);
    const to = childName(data.to);
    const old = entries.get(from);
    if (from) removeEntry(from);
    if (to && old) upsert({ ...old, name: to });
    else if (to) refreshSoon(); // from elsewhere: its details are in the listing
  } else if (type === 'reset') {
    refreshSoon(0);
  }
}

// Calls onEvent({id, type, data}) for each block of the stream.
async function readEvents(stream, onEvent) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { id: null, type: '', data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.search(/[\r\n]/)) >= 0 && !(buf[nl] === '\r' && nl === buf.length - 1)) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (!line) {
        if (ev.data.length || ev.type) onEvent({ ...ev, data: ev.data.join('\n') });
        ev = { id: null, type: '', data: [] };
      } else if (line[0] !== ':') { // ":" starts a comment: the keepalives
        const [, field, val] = /^([^:]*):? ?(.*)$/s.exec(line);
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.type = val;
        else if (field === 'id') ev.id = val;
      }
    }
  }
}

let liveUp;
const liveReady = new Promise((resolve) => { liveUp = resolve; });

async function liveLoop() {
  let lastId = '';
  let backoff = 500;
  for (let first = true; ; first = false) {
    const ctl = new AbortController();
    try {
      const res = await api('GET', '/events?path=' + enc(folder), {
        headers: { Accept: 'text/event-stream', ...(lastId && { 'Last-Event-ID': lastId }) },
        signal: ctl.signal,
        stream: true,
      });
      if (!res.ok) throw new Error(sentence(res));
      body.dataset.live = '1';
      liveUp();
      backoff = 500;
      if (!first && !lastId) refreshSoon(0); // nothing to resume from: the listing
      await readEvents(res.body, (ev) => {
        if (ev.id !== null) lastId = ev.id;
        let data = {};
        try { data = JSON.parse(ev.data) || {}; } catch { /* no JSON */ }
        applyEvent(ev.type, data);
      });
    } catch (err) {
      if (err instanceof NeedToken) return;
    } finally {
      ctl.abort();
      delete body.dataset.live;
    }
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 5000);
  }
}

// ---- managing files and folders

async function onRowClick(event) {
  const b = event.target.closest('button[data-act]');
  const e = b && entries.get(nameOf.get(b.closest('tr')));
  if (!e) return;
  try {
    if (b.dataset.act === 'copy') {
      await copyText(e.sha256, b);
      say('Copied');
    } else {
      await (b.dataset.act === 'move' ? moveEntry : deleteEntry)(e);
    }
  } catch (err) {
    say(explain(err));
  }
}

// Plain http to another host than localhost is no secure context: no clipboard API there, but
// the old copy command still works from a click.
async function copyText(text, from) {
  if (navigator.clipboard) return navigator.clipboard.writeText(text);
  const t = document.createElement('textarea');
  t.value = text;
  t.className = 'visually-hidden';
  document.body.append(t);
  t.select();
  const ok = document.execCommand('copy');
  t.remove();
  from.focus();
  if (!ok) throw new Error('Copying is not allowed here: select the SHA-256 and copy it by hand.');
}

const trimSlashes = (s) => s?.trim().replace(/^\/+|\/+$/g, '');

async function newFolder() {
  const name = trimSlashes(await question({
    title: 'New folder', input: { label: 'Folder name' }, ok: 'Create',
  }));
  if (!name) return;
  const res = await api('MKCOL', fileUrl(folder + name, true));
  say(res.ok ? `Created the folder ${name}.` : sentence(res));
  if (res.ok) refreshSoon(0);
}

async function moveEntry(e) {
  const dir = e.type === 'dir';
  const from = folder + e.name;
  const to = trimSlashes(await question({
    title: `Rename or move ${e.name}`,
    text: 'The new path, from the top of the store (folders are made as needed).',
    input: { label: 'New path', value: from },
    ok: 'Move',
  }));
  if (!to || to === from) return;
  const res = await api('MOVE', fileUrl(from, dir), {
    headers: { Destination: fileUrl(to, dir), Overwrite: 'F' },
  });
  if (!res.ok) return say(sentence(res));
  say(`Moved ${e.name} to ${to}.`);
  removeEntry(e.name);
  if (childName(to)) upsert({ ...e, name: childName(to) });
  refreshSoon(0);
}

async function deleteEntry(e) {
  const dir = e.type === 'dir';
  const yes = await question({
    title: dir ? `Delete the folder ${e.name} and everything in it?` : `Delete ${e.name}?`,
    text: 'This cannot be undone.',
    ok: 'Delete',
    danger: true,
  });
  if (yes === null) return;
  const res = await api('DELETE', fileUrl(folder + e.name, dir));
  if (!res.ok) return say(sentence(res));
  say(`Deleted ${e.name}.`);
  removeEntry(e.name);
  refreshSoon(0);
}

// ---- uploads: three at a time, resumable, the SHA-256 computed in a worker

const uploads = [];
let running = 0;
let transferred = 0; // bytes sent, for the speed
const samples = []; // [ms, transferred]
const retryable = (code) =>
  code === 408 || code === 429 || (code >= 500 && code !== 501 && code !== 507);

// One upload's worker; its answers come in the order of the messages.
function hasher() {
  const worker = new Worker(body.dataset.worker);
  const waiting = [];
  let broken = null;
  const stop = (err) => {
    broken = err;
    worker.terminate();
    waiting.splice(0).forEach((w) => w.reject(err));
  };
  worker.onmessage = (e) => waiting.shift()?.resolve(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    stop(new Error('the hashing worker failed'));
  };
  const ask = (msg, transfer) => {
    const p = broken ? Promise.reject(broken) : new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      worker.postMessage(msg, transfer || []);
    });
    p.catch(() => {}); // not awaited when the upload ends first
    return p;
  };
  return {
    update: (buf) => ask({ type: 'update', buf }, [buf]),
    final: () => ask({ type: 'final' }),
    stop: () => stop(new Error('stopped')),
  };
}

function setState(u, state, note = '') {
  u.state = state;
  u.note = note;
  drawUpload(u);
}
function forget(u) {
  u.url = null;
  localStorage.removeItem(u.key);
}

// An upload's request: network failures and timeouts are retried; pause or cancel (signal)
// and a refused token are not.
async function step(method, url, headers, signal) {
  const timeout = AbortSignal.timeout(STALL);
  try {
    return await api(method, url, {
      headers: { ...INTEROP, ...headers },
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (err) {
    if (signal.aborted || err instanceof NeedToken) throw err;
    throw fault(timeout.aborted ? 'no answer in time' : 'the connection failed', true);
  }
}

// The server's offset, or null when the upload is gone.
async function serverOffset(u, signal) {
  const res = await step('HEAD', u.url, {}, signal);
  const offset = res.headers.get('Upload-Offset');
  if (res.status === 404 || res.status === 410) return null;
  if (res.ok && offset !== null) return Number(offset);
  throw fault(`the server answered ${res.status}`, retryable(res.status));
}

// POST to the destination: the upload's URL, kept for a reload; a zero-byte file is stored.
async function create(u, signal) {
  const empty = u.size === 0;
  const res = await step('POST', fileUrl(u.path), {
    'Upload-Complete': empty ? '?1' : '?0',
    'Upload-Length': String(u.size),
    ...(empty && { 'Repr-Digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:' }),
  }, signal);
  const loc = res.headers.get('Location');
  if (empty && res.ok) return 0;
  if (res.status !== 201 || !loc) throw fault(sentence(res), retryable(res.status));
  const url = new URL(loc, location.href);
  u.url = url.pathname + url.search;
  localStorage.setItem(u.key, u.url);
  return Number(res.headers.get('Upload-Offset')) || 0;
}

// Feeds the worker the file up to end, in order and once; bytes below from (on the server
// after a reload) are hashed, not sent. At the end, the digest.
async function hashTo(u, from, end, signal) {
  while (u.hashedTo < end) {
    const stop = u.hashedTo < from ? Math.min(from, u.hashedTo + PIECE) : end;
    if (u.hashedTo < from) setState(u, 'hashing');
    const buf = await u.file.slice(u.hashedTo, stop).arrayBuffer().catch(() => {
      throw fault('the file could not be read; it may have changed');
    });
    await u.hashing; // at most one piece waits in the worker
    signal.throwIfAborted();
    u.hashing = u.hasher.update(buf); // and, at once, hashedTo says what the worker got
    u.hashedTo = stop;
  }
  if (end === u.size && !u.digest) {
    setState(u, 'hashing');
    u.digest = await u.hasher.final();
    signal.throwIfAborted();
  }
  if (u.state !== 'uploading') setState(u, 'uploading');
}

// PATCH [off, end) by XMLHttpRequest, for its upload progress: the next offset, 'done', or
// 'gone' (to be created again). A 401 is retried, and the retry's HEAD asks the token.
function append(u, off, end, signal) {
  const last = end === u.size;
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    let seen = 0;
    let idle = 0;
    const timer = setInterval(() => { if ((idle += 1000) >= STALL) x.abort(); }, 1000);
    const abort = () => x.abort();
    signal.addEventListener('abort', abort);
    const finish = (fn, value) => {
      clearInterval(timer);
      signal.removeEventListener('abort', abort);
      fn(value);
    };
    x.open('PATCH', u.url);
    const headers = {
      ...INTEROP,
      'Content-Type': 'application/partial-upload',
      'Upload-Offset': off,
      'Upload-Complete': last ? '?1' : '?0',
      ...(last && { 'Repr-Digest': `sha-256=:${u.digest.base64}:` }),
      ...(token && { Authorization: 'Bearer ' + token }),
    };
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => {
      idle = 0;
      transferred += e.loaded - seen;
      seen = e.loaded;
      u.sent = off + e.loaded;
      drawSoon(u);
    };
    x.onerror = () => finish(reject, fault('the connection failed', true));
    x.onabort = () => finish(reject, signal.aborted ? signal.reason
      : fault(idle >= STALL ? 'no answer in time' : 'the connection failed', true));
    x.onload = () => {
      const s = x.status;
      const offset = x.getResponseHeader('Upload-Offset');
      if (s === 200 || s === 201) return finish(resolve, 'done');
      if (s === 204) return finish(resolve, offset === null ? end : Number(offset));
      if (s === 409 && offset !== null) return finish(resolve, Number(offset)); // server's
      if (s === 404) return finish(resolve, 'gone');
      if (s === 400 && last) {
        forget(u); // the server dropped it
        return finish(reject, fault('the file changed or was corrupted on the way; ' +
          'nothing was stored'));
      }
      const again = s === 401 || s === 409 || retryable(s); // 409: another append runs
      finish(reject, fault(sentence({ text: x.responseText, status: s }), again));
    };
    x.send(u.file.slice(off, end));
  });
}

// Finds the upload (saved before a page reload) or creates it; appends until it is stored.
async function send(u, signal) {
  for (;;) {
    u.url ??= localStorage.getItem(u.key);
    let offset = u.url ? await serverOffset(u, signal) : null;
    if (offset === null) {
      forget(u);
      offset = await create(u, signal);
      if (!u.url) return; // a zero-byte file
    }
    for (;;) {
      signal.throwIfAborted();
      const end = Math.min(offset + PIECE, u.size);
      await hashTo(u, offset, end, signal);
      u.sent = offset;
      const next = await append(u, offset, end, signal);
      if (next === 'done') return;
      if (next === 'gone') break;
      offset = next;
      u.tries = 0;
    }
    forget(u); // gone: created again
  }
}

async function run(u) {
  const ctl = (u.ctl = new AbortController());
  const { signal } = ctl;
  setState(u, 'uploading');
  if (!u.hasher && u.size) u.hasher = hasher();
  try {
    for (;;) {
      try {
        await send(u, signal);
        break;
      } catch (err) {
        if (!err.retry) throw err;
        // 1, 2, 4 ... 10 s, while the page is open; then the offset is asked again.
        const until = Date.now() + Math.min(1000 * 2 ** u.tries++, 10000);
        u.error = err.message;
        while (Date.now() < until) {
          setState(u, 'retrying', `retrying in ${Math.ceil((until - Date.now()) / 1000)}s`);
          await sleep(Math.min(1000, until - Date.now()), signal);
        }
      }
    }
    u.sent = u.size;
    u.error = '';
    settle(u, 'done');
    refreshSoon(300);
  } catch (err) {
    if (signal.aborted) return; // paused or cancelled: already shown
    u.error = err.message;
    // The partial upload is freed (not without a token: that would ask again).
    if (u.url && !(err instanceof NeedToken)) api('DELETE', u.url).catch(() => {});
    settle(u, 'failed', 'failed: ' + err.message);
    say(`${u.rel}: ${err.message}`);
  }
}

// A final state: the saved URL and the worker are done with.
function settle(u, state, note) {
  forget(u);
  u.hasher?.stop();
  u.hasher = null;
  setState(u, state, note);
}

function pump() {
  while (running < 3) { // three at a time
    const u = uploads.find((x) => x.state === 'queued');
    if (!u) break;
    running++;
    run(u).finally(() => {
      running--;
      pump();
      const count = (state) => uploads.filter((x) => x.state === state).length;
      const failed = uploads.filter((x) => x.state === 'failed');
      const last = failed[failed.length - 1]; // its sentence stays in the summary
      if (!running && !count('queued') && count('done') + failed.length) {
        say(`Uploads finished: ${count('done')} stored` +
          (last ? `, ${failed.length} failed (${last.rel}: ${last.error})` : '.'));
      }
    });
  }
  drawTotal();
}

function pauseOrResume(u) {
  if (u.state === 'paused') {
    setState(u, 'queued');
    pump();
  } else if (!FINAL.includes(u.state)) {
    const wasRunning = u.state !== 'queued';
    setState(u, 'paused');
    if (wasRunning) u.ctl.abort();
  }
}

function cancel(u) {
  if (FINAL.includes(u.state)) return;
  u.ctl?.abort();
  if (u.url) api('DELETE', u.url).catch(() => {});
  settle(u, 'cancelled');
}

function addFiles(items) {
  const added = [];
  for (const { file, rel } of items) {
    const path = folder + rel;
    // The key of its URL in localStorage, for a page reload or a browser restart.
    const key = `duet-upload:${path}|${file.size}|${file.lastModified}`;
    if (uploads.some((u) => u.key === key && !FINAL.includes(u.state))) continue;
    const u = { file, rel, path, key, size: file.size, state: 'queued', note: '', sent: 0,
      error: '', url: null, hasher: null, hashedTo: 0, hashing: null, digest: null, tries: 0 };
    addUploadRow(u);
    uploads.push(u);
    added.push(u);
  }
  if (!added.length) return;
  $('#uploads').hidden = false;
  say(added.length > 1 ? `Uploading ${added.length} files.` : `Uploading ${added[0].rel}.`);
  pump();
}

// ---- the uploads panel

function addUploadRow(u) {
  const li = document.createElement('li');
  const r = esc(u.rel);
  li.className = 'upload';
  li.dataset.path = u.path;
  li.innerHTML = `<span class="up-path">${r}</span><progress max="100" value="0" ` +
    `aria-label="Upload of ${r}"></progress><span class="up-pct"></span><span ` +
    'class="up-state"></span><span class="up-buttons"><button type="button"></button> ' +
    `<button type="button" aria-label="Cancel ${r}">Cancel</button></span>`;
  const [pause, stop] = li.querySelectorAll('button');
  pause.onclick = () => pauseOrResume(u);
  stop.onclick = () => cancel(u);
  u.row = li;
  $('#upload-list').append(li);
  drawUpload(u);
}

function drawUpload(u) {
  const li = u.row;
  const pct = Math.floor(u.size ? (u.sent / u.size) * 100 : u.state === 'done' ? 100 : 0);
  const pause = li.querySelector('button');
  const buttons = pause.parentNode;
  li.dataset.state = u.state;
  li.querySelector('progress').value = pct;
  li.querySelector('.up-pct').textContent = pct + '%';
  li.querySelector('.up-state').textContent = u.note || u.state;
  pause.textContent = u.state === 'paused' ? 'Resume' : 'Pause';
  pause.setAttribute('aria-label', `${pause.textContent} ${u.rel}`);
  if (FINAL.includes(u.state) && !buttons.hidden) {
    if (buttons.contains(document.activeElement)) $('#uploads h2').focus();
    buttons.hidden = true;
  }
  drawSoon();
}

// Progress comes often: drawn at most every 200 ms.
const dirty = new Set();
let drawTimer = 0;
function drawSoon(u) {
  if (u) dirty.add(u);
  drawTimer ||= setTimeout(() => {
    drawTimer = 0;
    const now = [...dirty];
    dirty.clear();
    now.forEach(drawUpload);
    drawTotal();
  }, 200);
}

function drawTotal() {
  let size = 0;
  let sent = 0;
  for (const u of uploads.filter((x) => x.state !== 'cancelled')) {
    size += u.size;
    sent += u.state === 'done' ? u.size : Math.min(u.sent, u.size);
  }
  // The speed: what went up over the last 5 seconds.
  const now = performance.now();
  samples.push([now, transferred]);
  while (samples.length > 2 && now - samples[1][0] > 5000) samples.shift();
  const [t0, b0] = samples[0];
  const speed = now - t0 > 500 ? ((transferred - b0) * 1000) / (now - t0) : 0;
  const pct = size ? Math.floor((sent / size) * 100) : 100;
  let text = `${pct}% of ${humanSize(size)}`;
  if (speed > 0 && uploads.some((u) => !FINAL.includes(u.state) && u.state !== 'paused')) {
    const left = Math.ceil((size - sent) / speed);
    text += ` · ${(speed / 1e6).toFixed(1)} MB/s · ` +
      (left < 60 ? `${left} s` : `${Math.floor(left / 60)} min ${left % 60} s`) + ' left';
  }
  $('#total-progress').value = pct;
  $('#total-text').textContent = text;
  $('#clear-finished').hidden = !uploads.some((u) => FINAL.includes(u.state));
}

function clearFinished() {
  for (const u of uploads.filter((x) => FINAL.includes(x.state))) {
    u.row.remove();
    uploads.splice(uploads.indexOf(u), 1);
  }
  $('#uploads').hidden = !uploads.length;
  if (uploads.length) $('#uploads h2').focus();
  drawTotal();
}

// ---- picking and dropping

// A dropped file or folder, its tree kept as relative paths.
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((ok, no) => entry.file(ok, no));
    out.push({ file, rel: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    const batch = () => new Promise((ok, no) => reader.readEntries(ok, no));
    // readEntries gives a folder in batches, then an empty one.
    for (let children; (children = await batch()).length;) {
      for (const child of children) await walk(child, prefix + entry.name + '/', out);
    }
  }
}

async function dropped(dt) {
  // The entries must be taken during the drop event, before any await.
  const items = Array.from(dt.items || [], (item) =>
    item.kind === 'file' && (item.webkitGetAsEntry?.() || item.getAsFile())).filter(Boolean);
  if (!items.length) items.push(...Array.from(dt.files || []));
  const out = [];
  try {
    for (const x of items) {
      if (x instanceof File) out.push({ file: x, rel: x.name });
      else await walk(x, '', out);
    }
  } catch (err) {
    say('Some dropped files could not be read: ' + err.message);
  }
  addFiles(out);
}

function setupDrop() {
  let depth = 0;
  const files = (e) => e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
  const on = (type, fn) => document.addEventListener(type, (e) => {
    if (!files(e)) return;
    e.preventDefault();
    fn(e);
    body.classList.toggle('dragging', depth > 0); // the outline while dragging
  });
  on('dragenter', () => depth++);
  on('dragover', (e) => { e.dataTransfer.dropEffect = 'copy'; });
  on('dragleave', () => { depth = Math.max(0, depth - 1); });
  on('drop', (e) => {
    depth = 0;
    dropped(e.dataTransfer);
  });
}

// ---- the page

function setup() {
  $('#app').innerHTML = '<div class="toolbar"><p><label for="filter">Filter</label> ' +
    '<input type="search" id="filter" autocomplete="off" spellcheck="false"></p>' +
    '<p class="buttons"><button type="button" id="new-folder">New folder</button> ' +
    '<button type="button" id="pick-files">Upload files</button> ' +
    '<button type="button" id="pick-folder">Upload a folder</button></p>' +
    '<input type="file" id="file-input" multiple class="visually-hidden" tabindex="-1" ' +
    'aria-label="Files to upload"><input type="file" id="folder-input" webkitdirectory ' +
    'class="visually-hidden" tabindex="-1" aria-label="Folder to upload">' +
    '<p class="hint">Or drop files and folders anywhere on this page.</p></div>' +
    '<section id="uploads" aria-label="Uploads" hidden><h2 tabindex="-1">Uploads</h2>' +
    '<p class="total"><label for="total-progress">All uploads</label> <progress ' +
    'id="total-progress" max="100" value="0"></progress> <span id="total-text"></span> ' +
    '<button type="button" id="clear-finished" hidden>Clear finished</button></p>' +
    '<ul id="upload-list"></ul></section>';
  for (const kind of ['file', 'folder']) {
    const input = $(`#${kind}-input`);
    $(kind === 'file' ? '#pick-files' : '#pick-folder').onclick = () => input.click();
    input.onchange = () => {
      // webkitRelativePath keeps a folder's tree: "photos/2024/a.jpg".
      addFiles([...input.files].map((f) => ({ file: f, rel: f.webkitRelativePath || f.name })));
      input.value = '';
    };
  }
  $('#new-folder').onclick = () => newFolder().catch((err) => say(explain(err)));
  $('#clear-finished').onclick = clearFinished;
  $('#filter').oninput = () => {
    filter = $('#filter').value.trim().toLowerCase();
    for (const e of order) rows.get(e.name).hidden = !shown(e.name);
  };
  // Column titles become sort buttons; an Actions column holds the row buttons.
  const head = table.tHead.rows[0];
  for (const th of head.cells) {
    if (!['name', 'size', 'mtime'].includes(th.dataset.key)) continue;
    th.innerHTML = `<button type="button" class="sort">${esc(th.textContent)}</button>`;
    th.firstChild.onclick = () => sortBy(th.dataset.key);
  }
  head.insertAdjacentHTML('beforeend', '<th scope="col" class="actions">Actions</th>');
  markSort();
  tbody.onclick = onRowClick;
  setupDrop();
  adoptRows();
}

let listed;
const listReady = new Promise((resolve) => { listed = resolve; });

// The listing (after the token when the page came without it), then the live changes. An
// unreachable server or a 5xx is asked again.
async function load() {
  for (let backoff = 500, failed = false; ; backoff = Math.min(backoff * 2, 5000)) {
    try {
      if (body.dataset.auth === 'needed' && !token) await askToken(false);
      await loadListing();
      if (failed) say('');
      break;
    } catch (err) {
      say(explain(err));
      failed = true;
      if (!(err instanceof TypeError) && !err.retry) return; // no token; the folder is gone
      await sleep(backoff);
    }
  }
  listed();
  liveLoop();
}

window.duet = {
  ready: Promise.all([listReady, liveReady]).then(() => {}),
  uploads: () => uploads.map(({ path, state, sent, size, error }) =>
    ({ path, state, sent, size, error })),
  listing: () => order.filter((e) => !rows.get(e.name).hidden).map((e) => e.name),
  get drawMs() { return drawMs; },
  clearFinished,
};
setup();
load();
})();
