// flowgraph's job console: the jobs list and the job page (graph, timeline, node panel, gates).
// The same script draws the static page (`graph --format html`, `run --report`), whose data is
// embedded as window.FLOWGRAPH_VIEW; it then has no live parts.
(function () {
  'use strict';
  const STATIC = window.FLOWGRAPH_VIEW || null;
  const app = document.getElementById('app');
  const SVGNS = 'http://www.w3.org/2000/svg';
  const NODE_W = 188, NODE_H = 50, COLLAPSED_H = 66;
  const TERMINAL = new Set(['success', 'failure', 'skipped', 'canceled']);
  const JOB_TERMINAL = new Set(['success', 'failure', 'canceled']);
  const SEVERITY = ['failure', 'canceled', 'processing', 'pending', 'success', 'skipped'];
  const CLONES_PER_PAGE = 60;
  let page = null; // the job page shown: its view, drawing and live state

  // ----- small helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat(Infinity)) if (child !== null && child !== undefined && child !== false) node.append(child);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === 'text') node.textContent = value; else node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) if (child) node.append(child);
    return node;
  }
  async function api(path, options) {
    const response = await fetch(path, Object.assign({ headers: { 'Content-Type': 'application/json' } }, options));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || response.statusText);
    return body;
  }
  const enc = encodeURIComponent;
  const worst = (counts) => SEVERITY.find((s) => counts[s]) || 'skipped';
  const countsText = (counts) => Object.entries(counts).filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]).map(([s, n]) => `${n} ${s}`).join(' · ');
  function when(text) { return text ? new Date(text).toLocaleString() : '–'; }
  function duration(start, end) {
    if (!start) return '–';
    const ms = (end ? Date.parse(end) : Date.now()) - Date.parse(start);
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  }
  function textWidth(text, size) { return Math.ceil(text.length * size * 0.6) + 8; }
  function clip(text, length) { return text.length > length ? text.slice(0, length - 1) + '…' : text; }

  // ----- routing -------------------------------------------------------------------------------
  function route() {
    if (STATIC) { showJob(STATIC); return; }
    // #/jobs/JOB, or #/jobs/JOB/nodes/NODE: the job with that node's panel open
    const match = location.hash.match(/^#\/jobs\/([^/]+)(?:\/nodes\/(.+))?$/);
    if (match) openJob(decodeURIComponent(match[1]), match[2] ? decodeURIComponent(match[2]) : null);
    else showList();
  }
  window.addEventListener('hashchange', route);

  // ----- jobs list -----------------------------------------------------------------------------
  const list = { status: '', workflowId: '', cursors: [null], index: 0, timer: null };
  async function showList() {
    stopFollowing();
    page = null;
    document.title = 'flowgraph · jobs';
    const status = el('select', { 'aria-label': 'status', onchange: (e) => { list.status = e.target.value; list.cursors = [null]; list.index = 0; showList(); } },
      ['', 'queued', 'in-progress', 'success', 'failure', 'canceled'].map((s) => el('option', { value: s, selected: s === list.status, text: s || 'any status' })));
    const workflow = el('input', { placeholder: 'workflow id', value: list.workflowId, 'aria-label': 'workflow id' });
    workflow.addEventListener('change', () => { list.workflowId = workflow.value.trim(); list.cursors = [null]; list.index = 0; showList(); });
    const body = el('div', { class: 'list' }, el('div', { class: 'filters' }, status, workflow,
      el('button', { text: 'refresh', onclick: showList })), el('div', { class: 'empty', text: 'loading…' }));
    app.replaceChildren(el('header', { class: 'top' }, el('h1', { text: 'flowgraph · jobs' })), body);
    await loadRows(body);
  }

  // The newest page of the list is read again every few seconds while it is shown, so that new
  // jobs and their statuses appear (a page of 25 summaries, never a job's document).
  const LIST_EVERY_MS = 3000;
  async function loadRows(body) {
    clearTimeout(list.timer);
    const query = new URLSearchParams({ pageSize: '25' });
    if (list.status) query.set('status', list.status);
    if (list.workflowId) query.set('workflowId', list.workflowId);
    const cursor = list.cursors[list.index];
    if (cursor) query.set('cursor', cursor);
    let data;
    try { data = await api('/console/api/jobs?' + query); } catch (error) {
      body.lastChild.replaceWith(el('div', { class: 'error', text: String(error.message) })); return;
    }
    const rows = data.jobs.map((job) => el('tr', { 'data-job-id': job.id },
      el('td', {}, el('a', { href: '#/jobs/' + enc(job.id), text: job.id })),
      el('td', {}, el('span', { class: 'badge status-' + job.status, text: job.status })),
      el('td', { text: job.workflowName || job.workflowId || '–' }),
      el('td', { text: when(job.createdAt) }),
      el('td', { text: duration(job.createdAt, job.finished ? job.updatedAt : null) }),
      el('td', { class: 'gates', text: job.waitingGates.join(', ') })));
    const table = data.jobs.length ? el('table', { class: 'jobs' },
      el('thead', {}, el('tr', {}, ['job', 'status', 'workflow', 'started', 'duration', 'waiting gates'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows)) : el('div', { class: 'empty', text: 'no jobs' });
    const pager = el('div', { class: 'pager' },
      el('button', { text: '← newer', disabled: list.index === 0, onclick: () => { list.index -= 1; showList(); } }),
      el('span', { class: 'counts', text: `page ${list.index + 1}` }),
      el('button', { text: 'older →', disabled: !data.next, onclick: () => { list.cursors[list.index + 1] = data.next; list.index += 1; showList(); } }));
    if (!document.contains(body)) return; // the user went elsewhere meanwhile
    body.lastChild.replaceWith(el('div', { class: 'rows' }, table, pager));
    if (list.index === 0) list.timer = setTimeout(() => { if (document.contains(body)) loadRows(body); }, LIST_EVERY_MS);
  }

  // ----- job page ------------------------------------------------------------------------------
  async function openJob(jobId, nodeId) {
    stopFollowing();
    app.replaceChildren(el('div', { class: 'empty list', text: `loading job ${jobId}…` }));
    let view;
    const asked = api(`/console/api/jobs/${enc(jobId)}/view`);
    warmLayout(); // meanwhile (a large job's page data may be built as it is asked for)
    try { view = await asked; } catch (error) {
      app.replaceChildren(el('div', { class: 'error', text: String(error.message) }), el('a', { href: '#/', class: 'list', text: '← jobs' })); return;
    }
    showJob(view);
    if (nodeId) select(nodeId);
    if (!JOB_TERMINAL.has(view.job.status)) follow(jobId, view.position); // else nothing changes
  }

  function indexView(view) {
    // every node's status (clones of a collapsed loop included), to keep counts as they change
    const status = new Map();
    const template = new Map(); // clone id -> its drawn template, when collapsed
    for (const node of view.nodes) if (!node.collapsed) status.set(node.id, node.status);
    for (const [tid, clones] of Object.entries(view.clones || {})) {
      for (const [cid, s] of clones) { status.set(cid, s); template.set(cid, tid); }
    }
    const counts = {};
    for (const s of status.values()) counts[s] = (counts[s] || 0) + 1;
    return { status, template, counts };
  }

  function showJob(view) {
    const keep = page && page.view.job && view.job && page.view.job.id === view.job.id ? page : null;
    page = {
      view, index: indexView(view), nodes: new Map(), transform: keep ? keep.transform : null,
      selected: keep ? keep.selected : null, tab: keep ? keep.tab : 'graph', stream: keep ? keep.stream : null,
      refreshing: null, matches: [], matchAt: -1, search: keep ? keep.search : '',
    };
    document.title = `flowgraph · ${view.title}`;
    const job = view.job;
    const header = el('header', { class: 'top' },
      STATIC ? null : el('a', { href: '#/', text: '← jobs' }),
      el('h1', { text: view.title }),
      job ? el('span', { class: 'badge job-status status-' + job.status, text: job.status }) : null,
      el('span', { class: 'counts', id: 'counts' }),
      job ? el('div', { class: 'progress', title: 'progress' }, el('div', { id: 'progress' })) : null,
      job && job.error ? el('span', { class: 'error', text: job.error }) : null);
    const search = el('input', { type: 'search', placeholder: 'search id or title', id: 'search', value: page.search });
    search.addEventListener('input', () => runSearch(search.value));
    search.addEventListener('keydown', (e) => { if (e.key === 'Enter') nextMatch(); });
    const tabs = ['graph', 'timeline'].map((tab) => el('button', { class: tab === page.tab ? 'tab on' : 'tab', 'data-tab': tab, text: tab, onclick: () => { page.tab = tab; showJob(page.view); } }));
    const toolbar = el('div', { class: 'toolbar' }, tabs, search, el('span', { class: 'counts', id: 'matches' }),
      el('button', { text: 'fit', id: 'fit', onclick: fit }),
      el('button', { text: '+', id: 'zoom-in', title: 'zoom in', onclick: () => zoomBy(1.25) }),
      el('button', { text: '−', id: 'zoom-out', title: 'zoom out', onclick: () => zoomBy(0.8) }),
      legend());
    const aside = el('aside', { id: 'panel' }, el('div', { class: 'hint', text: 'Click a node: why it ran, waited or was skipped, its values and assets.' }));
    const main = el('div', { class: 'main' });
    app.replaceChildren(header, toolbar, main);
    if (page.tab === 'timeline') main.append(timeline(view), aside);
    else { main.append(el('div', { class: 'canvas', id: 'canvas' }, el('div', { class: 'laying', text: 'laying out…' })), aside); drawGraph(view); }
    updateSummary();
    if (page.selected) select(page.selected, true);
  }

  function legend() {
    const statuses = page.view.legend || ['success', 'processing', 'pending', 'failure', 'skipped', 'canceled'];
    return el('div', { class: 'legend' }, statuses
      .map((s) => el('span', {}, el('i', { style: `background: var(--${s})` }), s)),
    el('span', { text: '— taken  ┄ not taken  ▭ loop: one row per iteration' }));
  }

  function updateSummary() {
    const counts = page.index.counts;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const done = Object.entries(counts).filter(([s]) => TERMINAL.has(s)).reduce((a, [, n]) => a + n, 0);
    const holder = document.getElementById('counts');
    if (holder) holder.textContent = `${total} nodes: ${countsText(counts)}`;
    const bar = document.getElementById('progress');
    if (bar && page.view.job) {
      const fraction = page.view.job.status === 'success' ? 1 : (total ? done / total : 1);
      bar.style.width = `${Math.round(fraction * 100)}%`;
      bar.parentNode.dataset.progress = fraction.toFixed(3);
    }
  }

  // ----- graph: ELK layout, SVG drawing ------------------------------------------------------
  function elkGraph(view) {
    const byParent = new Map();
    const add = (parent, child) => { const key = parent || ''; if (!byParent.has(key)) byParent.set(key, []); byParent.get(key).push(child); };
    const shapes = new Map();
    for (const container of view.containers) {
      const loop = container.kind === 'loop';
      const shape = {
        id: container.id, children: [], edges: [],
        layoutOptions: loop
          ? { 'elk.direction': 'DOWN', 'elk.padding': '[top=30,left=10,bottom=10,right=10]', 'elk.spacing.nodeNode': '8', 'elk.layered.spacing.nodeNodeBetweenLayers': '8' }
          : { 'elk.direction': 'RIGHT', 'elk.padding': '[top=16,left=10,bottom=8,right=10]' },
      };
      shapes.set(container.id, shape);
      add(container.parent, shape);
    }
    for (const node of view.nodes) {
      const shape = { id: node.id, width: NODE_W, height: node.collapsed ? COLLAPSED_H : NODE_H };
      shapes.set(node.id, shape);
      add(node.parent, shape);
    }
    const root = { id: '__root', children: byParent.get('') || [], edges: [] };
    for (const [key, children] of byParent) if (key) shapes.get(key).children = children;
    view.edges.forEach((edge, i) => {
      const shape = { id: `e${i}`, sources: [edge.source], targets: [edge.target] };
      if (edge.label) shape.labels = [{ text: edge.label, width: textWidth(edge.label, 10.5), height: 14 }];
      (edge.parent ? shapes.get(edge.parent) : root).edges.push(shape);
    });
    for (const container of view.containers) {
      if (container.kind !== 'loop') continue;
      const rows = shapes.get(container.id).children; // one below the other: an unseen chain
      for (let i = 1; i < rows.length; i += 1) shapes.get(container.id).edges.push({ id: `chain:${rows[i].id}`, sources: [rows[i - 1].id], targets: [rows[i].id] });
    }
    return root;
  }

  const LAYOUT = {
    'elk.algorithm': 'layered', 'elk.direction': 'RIGHT', 'elk.json.shapeCoords': 'ROOT',
    'elk.json.edgeCoords': 'ROOT', 'elk.edgeRouting': 'ORTHOGONAL', 'elk.spacing.nodeNode': '18',
    'elk.layered.spacing.nodeNodeBetweenLayers': '42', 'elk.spacing.edgeLabel': '3',
    'elk.layered.spacing.edgeNodeBetweenLayers': '14', 'elk.edgeLabels.inline': 'false',
    'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES', 'elk.hierarchyHandling': 'SEPARATE_CHILDREN',
  };

  // elkjs's first layout in a page takes a few hundred milliseconds more than the next ones
  // (it starts, then its code warms up): the page pays that once, on a small graph, while it
  // waits for its first job's data
  let warmed = null;
  function warmLayout() {
    const graph = {
      id: 'warm',
      children: [{ id: 'a', width: NODE_W, height: NODE_H }, { id: 'b', width: NODE_W, height: NODE_H }],
      edges: [{ id: 'e', sources: ['a'], targets: ['b'] }],
    };
    if (!warmed && window.ELK) warmed = new window.ELK().layout(graph, { layoutOptions: LAYOUT }).catch(() => null);
  }

  async function drawGraph(view) {
    const started = performance.now();
    let layout;
    try { layout = await new window.ELK().layout(elkGraph(view), { layoutOptions: LAYOUT }); } catch (error) {
      const failed = document.getElementById('canvas');
      if (failed) failed.replaceChildren(el('div', { class: 'error', text: `the layout failed: ${error.message || error}` }));
      return;
    }
    if (!page || page.view !== view || page.tab !== 'graph') return;
    const canvas = document.getElementById('canvas');
    const world = svg('g', { id: 'viewport' });
    const drawing = svg('svg', { id: 'graph', 'data-width': layout.width, 'data-height': layout.height },
      svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
        svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#667085' }))), world);
    const containers = new Map(view.containers.map((c) => [c.id, c]));
    const nodes = new Map(view.nodes.map((n) => [n.id, n]));
    const edges = [];
    const layers = { groups: svg('g', {}), edges: svg('g', {}), nodes: svg('g', {}) };
    const walk = (shape) => {
      for (const child of shape.children || []) {
        if (containers.has(child.id)) layers.groups.append(drawContainer(containers.get(child.id), child));
        else if (nodes.has(child.id)) layers.nodes.append(drawNode(nodes.get(child.id), child));
        walk(child);
      }
      for (const edge of shape.edges || []) edges.push(edge);
    };
    walk(layout);
    for (const edge of edges) {
      if (edge.id.startsWith('chain:')) continue;
      layers.edges.append(drawEdge(view.edges[Number(edge.id.slice(1))], edge));
    }
    world.append(layers.groups, layers.edges, layers.nodes);
    canvas.replaceChildren(drawing);
    page.graph = { svg: drawing, world, width: layout.width, height: layout.height };
    page.layoutMs = performance.now() - started;
    drawing.dataset.layoutMs = page.layoutMs.toFixed(0);
    panAndZoom(drawing);
    if (page.transform) applyTransform(); else fit();
    if (page.search) runSearch(page.search);
    if (page.selected && page.nodes.has(page.selected)) page.nodes.get(page.selected).classList.add('selected');
    drawing.classList.add('ready');
  }

  function drawContainer(container, shape) {
    if (container.kind === 'loop') {
      const counts = container.counts || {};
      const iterations = container.iterations === undefined || container.iterations === null ? '' : ` · ${container.iterations} iteration${container.iterations === 1 ? '' : 's'}`;
      const label = `for-each ${container.loop}${iterations}${Object.keys(counts).length ? ' · ' + countsText(counts) : ''}`;
      return svg('g', { class: `group status-${worst(counts)}`, 'data-loop': container.loop },
        svg('rect', { x: shape.x, y: shape.y, width: shape.width, height: shape.height }),
        svg('text', { x: shape.x + 10, y: shape.y + 18, text: clip(label, Math.max(20, shape.width / 6.5)) }));
    }
    const label = container.index === null || container.index === undefined ? 'each iteration' : `#${container.index}`;
    return svg('g', { class: 'row', 'data-row': container.id },
      svg('rect', { x: shape.x, y: shape.y, width: shape.width, height: shape.height }),
      svg('text', { x: shape.x + 6, y: shape.y + 11, text: label }));
  }

  function nodeClass(node, status) {
    return `node status-${status} type-${node.type}${node.gate ? ' gate' : ''}${node.collapsed ? ' collapsed' : ''}`;
  }

  function drawNode(node, shape) {
    const group = svg('g', { class: nodeClass(node, node.status), 'data-node-id': node.id, transform: `translate(${shape.x},${shape.y})` },
      svg('title', { text: `${node.id}${node.title ? ' — ' + node.title : ''} (${node.type})` }),
      svg('rect', { width: shape.width, height: shape.height, rx: node.gate ? 12 : 6 }),
      svg('text', { x: 10, y: 20, text: clip(node.collapsed ? `${node.id} ×${total(node.counts)}` : node.id, 26) }),
      svg('text', { x: 10, y: 37, class: 'sub', text: clip(node.title || node.type, 30) }));
    if (node.collapsed) group.append(svg('text', { x: 10, y: 55, class: 'sub counts-line', text: clip(countsText(node.counts), 34) }));
    group.addEventListener('click', (event) => { event.stopPropagation(); select(node.id); });
    page.nodes.set(node.id, group);
    return group;
  }
  const total = (counts) => Object.values(counts || {}).reduce((a, b) => a + b, 0);

  function drawEdge(edge, shape) {
    const state = edge.taken === true ? ' taken' : edge.taken === false ? ' untaken' : '';
    const group = svg('g', { class: 'edge-group', 'data-source': edge.source, 'data-target': edge.target });
    for (const section of shape.sections || []) {
      const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
      group.append(svg('path', { class: `edge kind-${edge.kind}${state}`, d: 'M' + points.map((p) => `${p.x},${p.y}`).join(' L'), 'marker-end': 'url(#arrow)' }));
    }
    for (const label of shape.labels || []) {
      group.append(svg('rect', { class: 'edge-label-bg', x: label.x, y: label.y, width: label.width, height: label.height }),
        svg('text', { class: `edge-label${state}`, x: label.x + 4, y: label.y + 11, text: label.text }));
    }
    return group;
  }

  // ----- pan, zoom, fit, search --------------------------------------------------------------
  function applyTransform() {
    const t = page.transform;
    page.graph.world.setAttribute('transform', `translate(${t.x},${t.y}) scale(${t.k})`);
    page.graph.svg.dataset.zoom = t.k.toFixed(3);
  }
  function fit() {
    if (!page || !page.graph) return;
    const box = page.graph.svg.getBoundingClientRect();
    const k = Math.min(box.width / (page.graph.width + 40), box.height / (page.graph.height + 40), 1.4);
    page.transform = { k, x: (box.width - page.graph.width * k) / 2, y: (box.height - page.graph.height * k) / 2 };
    applyTransform();
  }
  function zoomBy(factor, cx, cy) {
    if (!page || !page.graph) return;
    const box = page.graph.svg.getBoundingClientRect();
    const x = cx === undefined ? box.width / 2 : cx, y = cy === undefined ? box.height / 2 : cy;
    const t = page.transform;
    const k = Math.min(4, Math.max(0.02, t.k * factor));
    page.transform = { k, x: x - ((x - t.x) * k) / t.k, y: y - ((y - t.y) * k) / t.k };
    applyTransform();
  }
  function panAndZoom(drawing) {
    let from = null;
    drawing.addEventListener('wheel', (event) => {
      event.preventDefault();
      const box = drawing.getBoundingClientRect();
      zoomBy(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    drawing.addEventListener('pointerdown', (event) => {
      if (event.target.closest('.node')) return;
      from = { x: event.clientX, y: event.clientY, t: Object.assign({}, page.transform) };
      drawing.classList.add('panning');
    });
    window.addEventListener('pointermove', (event) => {
      if (!from || !page || !page.graph) return;
      page.transform = { k: from.t.k, x: from.t.x + event.clientX - from.x, y: from.t.y + event.clientY - from.y };
      applyTransform();
    });
    window.addEventListener('pointerup', () => { from = null; drawing.classList.remove('panning'); });
  }
  function centerOn(id) {
    const node = page.nodes.get(id);
    if (!node || !page.graph) return;
    const box = page.graph.svg.getBoundingClientRect();
    const shape = node.getBBox();
    const match = /translate\(([-\d.e]+),([-\d.e]+)\)/.exec(node.getAttribute('transform'));
    const k = Math.max(page.transform.k, 0.8);
    const x = Number(match[1]) + shape.width / 2, y = Number(match[2]) + shape.height / 2;
    page.transform = { k, x: box.width / 2 - x * k, y: box.height / 2 - y * k };
    applyTransform();
  }
  function runSearch(text) {
    page.search = text;
    const query = text.trim().toLowerCase();
    const nodes = page.view.nodes;
    page.matches = query ? nodes.filter((n) => n.id.toLowerCase().includes(query) || (n.title || '').toLowerCase().includes(query)).map((n) => n.id) : [];
    page.matchAt = -1;
    const clone = page.index.template.get(text.trim()); // a clone of a loop drawn once: its template
    if (clone && !page.matches.includes(clone)) page.matches.push(clone);
    for (const [id, group] of page.nodes) group.classList.toggle('match', page.matches.includes(id));
    if (page.graph) page.graph.svg.classList.toggle('searching', Boolean(query));
    const shown = document.getElementById('matches');
    if (shown) shown.textContent = query ? `${page.matches.length} match${page.matches.length === 1 ? '' : 'es'}` : '';
    if (page.matches.length) nextMatch();
  }
  function nextMatch() {
    if (!page.matches.length) return;
    page.matchAt = (page.matchAt + 1) % page.matches.length;
    centerOn(page.matches[page.matchAt]);
    const typed = page.search.trim();
    if (page.index.template.get(typed) === page.matches[page.matchAt]) select(typed, true);
  }

  // ----- node panel --------------------------------------------------------------------------
  async function select(id, quiet) {
    page.selected = id;
    for (const [nodeId, group] of page.nodes) group.classList.toggle('selected', nodeId === id);
    const node = page.view.nodes.find((n) => n.id === id);
    if (node && node.collapsed) { showClones(node, 0); return; }
    let details = page.view.details[id];
    if (!STATIC && page.view.job) {
      try { details = await api(`/console/api/jobs/${enc(page.view.job.id)}/nodes/${enc(id)}`); } catch (error) {
        if (!details) { panel(el('div', { class: 'error', text: String(error.message) })); return; }
      }
    }
    if (page.selected !== id) return;
    if (!details) {
      const status = page.index.status.get(id) || 'unknown';
      panel(el('h2', { text: id }), el('span', { class: 'badge status-' + status, text: status }),
        el('p', { class: 'hint', text: 'Open this job in `flowgraph serve` for each clone\'s panel.' }));
      return;
    }
    showDetails(details);
    if (!quiet) centerOnIfHidden(id);
  }
  function centerOnIfHidden(id) {
    const node = page.nodes.get(id);
    if (!node || !page.graph) return;
    const box = node.getBoundingClientRect(), area = page.graph.svg.getBoundingClientRect();
    if (box.right < area.left || box.left > area.right || box.bottom < area.top || box.top > area.bottom) centerOn(id);
  }
  function panel(...children) {
    const aside = document.getElementById('panel');
    if (aside) aside.replaceChildren(...children.filter((child) => child !== null && child !== undefined));
  }
  function thumb(asset, extra) {
    const url = asset.url || '';
    const picture = url && !url.startsWith('dry-run://')
      ? el('img', { src: url, alt: asset.assetId || '', loading: 'lazy' })
      : el('div', { class: 'placeholder', text: url.startsWith('dry-run://') ? 'dry run' : 'no file' });
    return el('div', Object.assign({ class: 'thumb', title: asset.assetId || '' }, extra || {}), picture, el('span', { text: clip(asset.label || asset.assetId || '', 22) }));
  }
  function showDetails(d) {
    const status = d.status;
    const facts = [['type', d.type + (d.modelId ? ` · ${d.modelId}` : '')]];
    if (d.started) facts.push(['started', when(d.started)], ['ended', when(d.ended)], ['took', duration(d.started, d.ended)]);
    else if (d.ended) facts.push(['ended', when(d.ended)]);
    if (typeof d.progress === 'number') facts.push(['progress', `${Math.round(d.progress * 100)}% (the remote job of its call)`]);
    if (d.attempts) facts.push(['attempts', `${d.attempts}${d.attempts > 1 ? ` (${d.attempts - 1} retr${d.attempts === 2 ? 'y' : 'ies'})` : ''}`]);
    for (const merge of d.merge || []) facts.push(['merge', `input \`${merge.input}\` took its value from \`${merge.from}\``]);
    if (d.reason && status !== 'success') facts.push(['reason', d.reason]);
    const parts = [
      el('h2', { text: d.id }),
      d.title ? el('div', { class: 'hint', text: d.title }) : null,
      el('span', { class: 'badge status-' + status, text: status }),
      d.explanation ? el('h3', { text: 'why' }) : null,
      d.explanation ? el('div', { class: 'explanation', text: d.explanation }) : null,
      el('dl', {}, facts.map(([k, v]) => [el('dt', { text: k }), el('dd', { class: 'fact-' + k, text: v })])),
    ];
    if (d.gate) parts.push(gatePanel(d));
    if (d.childGates && d.childGates.length) {
      // a sub-workflow parked at gates: each is decided on its own job's page
      parts.push(el('div', { class: 'gate child-gates' }, el('strong', { text: 'its child job waits at' }),
        d.childGates.map((g) => el('div', {}, STATIC ? el('span', { text: `${g.id} (node ${g.nodeId} of job ${g.jobId})` })
          : el('a', { class: 'child-gate', href: `#/jobs/${enc(g.jobId)}/nodes/${enc(g.nodeId)}`, text: `${g.id}: decide it in job ${g.jobId}` })))));
    }
    if (d.assets && d.assets.length) parts.push(el('h3', { text: 'assets' }), el('div', { class: 'thumbs' }, d.assets.map((a) => thumb(a))));
    parts.push(el('h3', { text: 'inputs' }), d.inputs === undefined || d.inputs === null
      ? el('div', { class: 'hint inputs', text: 'not resolved: the node did not run' })
      : el('pre', { class: 'inputs', text: JSON.stringify(d.inputs, null, 2) }));
    if (d.outputs && Object.keys(d.outputs).length) parts.push(el('h3', { text: 'outputs' }), el('pre', { class: 'outputs', text: JSON.stringify(d.outputs, null, 2) }));
    panel(...parts);
  }
  function showClones(node, at) {
    const clones = (page.view.clones || {})[node.id] || [];
    const shown = clones.slice(at, at + CLONES_PER_PAGE);
    panel(el('h2', { text: `${node.id} ×${clones.length}` }),
      el('div', { class: 'hint', text: `one node per iteration, drawn as its template: ${countsText(countsOf(node.id))}` }),
      el('div', { class: 'clones' }, shown.map(([id]) => el('button', { class: 'clone status-' + (page.index.status.get(id) || ''), 'data-clone': id, text: id, onclick: () => select(id) }))),
      el('div', { class: 'pager' },
        el('button', { text: '←', disabled: at === 0, onclick: () => showClones(node, Math.max(0, at - CLONES_PER_PAGE)) }),
        el('span', { class: 'counts', text: `${at + 1}–${at + shown.length} of ${clones.length}` }),
        el('button', { text: '→', disabled: at + CLONES_PER_PAGE >= clones.length, onclick: () => showClones(node, at + CLONES_PER_PAGE) })));
  }
  function countsOf(templateId) {
    const counts = {};
    for (const [id] of (page.view.clones || {})[templateId] || []) { const s = page.index.status.get(id); counts[s] = (counts[s] || 0) + 1; }
    return counts;
  }

  // ----- gates: the API's own routes, as the SDK calls them ------------------------------------
  function gatePanel(d) {
    const gate = d.gate;
    const job = page.view.job;
    const box = el('div', { class: 'gate', 'data-gate': d.id });
    const note = el('span', { class: 'hint gate-note' });
    const live = !STATIC && job && job.workflowId;
    const send = async (route, body) => {
      for (const button of box.querySelectorAll('button')) button.disabled = true;
      note.textContent = 'sending…';
      try {
        await api(`/v1/workflows/${enc(job.workflowId)}/${route}`, { method: 'PUT', body: JSON.stringify(Object.assign({ nodeId: d.id, workflowJobId: job.id }, body)) });
        note.textContent = 'decided';
        box.classList.add('decided');
      } catch (error) {
        note.textContent = String(error.message);
        for (const button of box.querySelectorAll('button')) button.disabled = false;
      }
    };
    if (gate.holdsBack && gate.holdsBack.length) box.append(el('div', { class: 'hint', text: 'holds back: ' + gate.holdsBack.join(', ') }));
    if (gate.type === 'user-approval') {
      box.prepend(el('strong', { text: 'waiting for approval' }));
      if (live) box.append(el('div', { class: 'actions' },
        el('button', { class: 'approve', text: 'Approve', onclick: () => send('user-approval', { action: 'approve' }) }),
        el('button', { class: 'reject', text: 'Reject', onclick: () => send('user-approval', { action: 'reject' }) }), note));
      return box;
    }
    const picked = new Set();
    const rule = gate.min === gate.max ? `${gate.min}` : `${gate.min} to ${gate.max}`;
    const choose = el('button', { class: 'select', text: 'Select', disabled: true });
    const count = el('span', { class: 'hint pick-count', text: `choose ${rule} of ${gate.items.length}` });
    // the order of the picks is the order of the output, as with `flowgraph select JOB NODE 2 0`
    const cards = [];
    const refresh = () => {
      choose.disabled = picked.size < gate.min || picked.size > gate.max;
      count.textContent = `${picked.size} chosen (in this order: ${[...picked].join(', ') || 'none'}); choose ${rule} of ${gate.items.length}`;
      const order = [...picked];
      cards.forEach((card, index) => {
        const at = order.indexOf(index);
        card.classList.toggle('picked', at >= 0);
        if (at >= 0) card.dataset.order = String(at + 1); else delete card.dataset.order;
      });
    };
    const thumbs = gate.items.map((item, index) => {
      const asset = { assetId: typeof item.value === 'string' ? item.value : JSON.stringify(item.value), url: item.url, label: `[${index}] ${typeof item.value === 'string' ? item.value : JSON.stringify(item.value)}` };
      const card = thumb(asset, { 'data-index': String(index) });
      if (live) card.addEventListener('click', () => {
        if (picked.has(index)) picked.delete(index); else if (picked.size < gate.max) picked.add(index);
        refresh();
      });
      cards.push(card);
      return card;
    });
    box.prepend(el('strong', { text: 'waiting for a selection' }));
    box.append(count, el('div', { class: 'thumbs' }, thumbs));
    choose.addEventListener('click', () => send('user-selection', { action: 'select', selectedIndices: [...picked] }));
    if (live) box.append(el('div', { class: 'actions' }, choose,
      el('button', { class: 'reject', text: 'Reject', onclick: () => send('user-selection', { action: 'reject' }) }), note));
    return box;
  }

  // ----- timeline ----------------------------------------------------------------------------
  function timeline(view) {
    const bars = view.timeline || [];
    const holder = el('div', { class: 'timeline', id: 'timeline' });
    if (!bars.length) { holder.append(el('div', { class: 'empty', text: 'no node has started yet' })); return holder; }
    const start = Math.min(...bars.map((b) => Date.parse(b.start)));
    const ends = bars.map((b) => Date.parse(b.end || b.start));
    const end = Math.max(...ends, start + 1);
    const LEFT = 230, WIDTH = 900, ROW = 20;
    const x = (t) => LEFT + ((t - start) / (end - start)) * WIDTH;
    const items = [];
    let y = 24, group = null;
    for (const bar of bars) {
      if (bar.group !== group) {
        group = bar.group;
        if (group) { items.push(svg('text', { class: 'group', x: 4, y: y + 13, text: `for-each ${group}` })); y += ROW; }
      }
      const from = x(Date.parse(bar.start)), to = Math.min(LEFT + WIDTH, x(bar.end ? Date.parse(bar.end) : Date.now()));
      const label = bar.count > 1 ? `${bar.id} ×${bar.count}` : bar.id;
      const rect = svg('rect', { class: `bar status-${bar.status}`, 'data-node-id': bar.id, x: from, y: y + 3, width: Math.max(2, to - from), height: ROW - 6, rx: 2 },
        svg('title', { text: `${label}: ${duration(bar.start, bar.end)}` }));
      rect.addEventListener('click', () => select(bar.id));
      items.push(svg('text', { x: group ? 16 : 4, y: y + 14, text: clip(label, 32) }), rect);
      y += ROW;
    }
    const axis = [];
    for (let i = 0; i <= 4; i += 1) {
      const at = LEFT + (WIDTH * i) / 4;
      axis.push(svg('line', { class: 'axis', x1: at, x2: at, y1: 14, y2: y }), svg('text', { x: at - 10, y: 11, text: duration(new Date(start).toISOString(), new Date(start + ((end - start) * i) / 4).toISOString()) }));
    }
    holder.append(svg('svg', { width: LEFT + WIDTH + 40, height: y + 10 }, axis, items));
    return holder;
  }

  // ----- live: the store's event log as server-sent events ------------------------------------
  function follow(jobId, position) {
    if (!page || STATIC) return;
    const stream = new EventSource(`/console/api/jobs/${enc(jobId)}/events?from=${position}`);
    stream.onmessage = (message) => applyTransitions(JSON.parse(message.data));
    page.stream = stream;
  }
  function stopFollowing() {
    if (page && page.stream) { page.stream.close(); page.stream = null; }
  }
  function setStatus(id, status) {
    const index = page.index;
    const before = index.status.get(id);
    if (before === status) return false;
    if (before !== undefined) index.counts[before] -= 1;
    index.counts[status] = (index.counts[status] || 0) + 1;
    index.status.set(id, status);
    return true;
  }
  function applyTransitions(rows) {
    if (!page) return;
    let refresh = false;
    for (const [node, , , to] of rows) {
      if (node === null) {
        if (page.view.job.status !== to) {
          page.view.job.status = to;
          const badge = document.querySelector('.job-status');
          if (badge) { badge.className = 'badge job-status status-' + to; badge.textContent = to; }
          refresh = refresh || JOB_TERMINAL.has(to) || to === 'in-progress';
          if (JOB_TERMINAL.has(to)) stopFollowing(); // a finished job no longer changes
        }
        continue;
      }
      const known = page.index.status.has(node);
      if (!setStatus(node, to)) continue;
      const drawn = page.nodes.get(node);
      const template = page.index.template.get(node);
      if (drawn) {
        drawn.setAttribute('class', nodeClass(page.view.nodes.find((n) => n.id === node), to) + (page.selected === node ? ' selected' : ''));
      } else if (template && page.nodes.has(template)) {
        const counts = countsOf(template);
        const shape = page.view.nodes.find((n) => n.id === template);
        shape.counts = counts;
        const group = page.nodes.get(template);
        group.setAttribute('class', nodeClass(shape, worst(counts)) + (page.selected === template ? ' selected' : ''));
        const line = group.querySelector('.counts-line');
        if (line) line.textContent = clip(countsText(counts), 34);
      }
      if (!known) refresh = true; // a loop made new nodes: draw them
      if (page.selected === node) select(node, true);
    }
    updateSummary();
    if (refresh) refreshSoon();
  }
  function refreshSoon() {
    if (page.refreshing) return;
    page.refreshing = setTimeout(async () => {
      const current = page;
      try {
        const view = await api(`/console/api/jobs/${enc(current.view.job.id)}/view`);
        if (page === current) { current.refreshing = null; showJob(view); }
      } catch (error) { current.refreshing = null; }
    }, 300);
  }

  window.flowgraphConsole = { fit, zoomBy, page: () => page };
  route();
})();
