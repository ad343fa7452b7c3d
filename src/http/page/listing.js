// duet's folder page, the listing: drawing, sorting, filtering, live changes (Server-Sent
// Events read with fetch, to send the token) and managing files and folders.
// The page's classic deferred scripts run in order (common.js, listing.js, uploads.js, app.js)
// and share their top-level names.
'use strict';

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
