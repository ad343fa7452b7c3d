// duet's folder page: the server drew the listing; these scripts add sorting, filtering, live
// changes, management and resumable uploads hashed by a worker on the way. This one, the last of
// the page's classic deferred scripts (common.js, listing.js, uploads.js, app.js: they run in
// order and share their top-level names), builds the controls and starts the page.
'use strict';

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
