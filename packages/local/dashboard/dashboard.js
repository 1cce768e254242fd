/* global window, document, EventSource, ResizeObserver, uPlot */
// The dashboard page: one card per Service, one block per revision with four
// uPlot charts (instances, concurrency, requests, activator queue) and two
// lists (cold starts, scale decisions), fed by /events once a second.
// Plain script, no build step; window.sluice exposes the state to tests.

const WINDOW_S = 300
const COLORS = ['#2f6fde', '#e08a00', '#1a9e5a', '#a347c2', '#d6455d', '#3aa6b9']
const state = { revisions: new Map(), services: new Map(), ticks: 0, history: {} }
window.sluice = state

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else e.setAttribute(k, v)
  }
  for (const c of children) e.append(c)
  return e
}
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false })
const num = (n, d = 1) => (n === null || n === undefined ? '–' : Number(n).toFixed(d).replace(/\.0+$/, ''))

// Each chart: its title, series (label, colour, value from a sample, options), and scales.
const CHARTS = [
  {
    id: 'instances', title: 'Instances (● panic mode)',
    series: [
      ['actual', '#2f6fde', (s) => s.actual, { width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
      ['desired', '#1a9e5a', (s) => s.desired, { dash: [6, 3], paths: uPlot.paths.stepped({ align: 1 }) }],
      ['recommended', '#a347c2', (s) => s.recommended, { dash: [2, 3] }],
      ['panic', '#e5534b', (s) => (s.panicking ? s.desired : null), { width: 0, points: { show: true, size: 7, fill: '#e5534b' } }],
    ],
    y: { min: 0 },
  },
  {
    id: 'concurrency', title: 'Observed concurrency vs target',
    series: [
      ['stable window', '#2f6fde', (s) => s.observed, { width: 2 }],
      ['panic window', '#e08a00', (s) => s.observedPanic, {}],
      ['target × instances', '#888', (s, r) => (r.target === null ? null : r.target * Math.max(s.actual, 1)), { dash: [6, 3] }],
    ],
    y: { min: 0 },
  },
  {
    id: 'requests', title: 'Requests/s and latency (ms, right)',
    series: [
      ['req/s', '#2f6fde', (s) => s.rps, { width: 2 }],
      ['p50', '#1a9e5a', (s) => s.p50, { scale: 'ms' }],
      ['p90', '#e08a00', (s) => s.p90, { scale: 'ms' }],
      ['p99', '#d6455d', (s) => s.p99, { scale: 'ms' }],
    ],
    y: { min: 0 },
    ms: true,
  },
  {
    id: 'buffered', title: 'Requests waiting in the activator',
    series: [['buffered', '#a347c2', (s) => s.buffered, { width: 2, fill: 'rgba(163,71,194,.15)' }]],
    y: { min: 0 },
  },
]

function chartWidth(box) {
  return Math.max(200, Math.floor(box.clientWidth))
}

function makeChart(def, box) {
  const axes = [{}, { size: 50 }]
  const scales = { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } }
  if (def.ms) {
    scales.ms = { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] }
    axes.push({ scale: 'ms', side: 1, size: 50, grid: { show: false } })
  }
  const opts = {
    width: chartWidth(box),
    height: 150,
    scales,
    axes,
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{}, ...def.series.map(([label, stroke, , extra]) => ({ label, stroke, width: 1.5, spanGaps: false, ...extra }))],
  }
  const plot = new uPlot(opts, [[], ...def.series.map(() => [])], box)
  // Follows the box (window resizes, a scrollbar appearing).
  new ResizeObserver(() => {
    const w = chartWidth(box)
    if (w !== plot.width) plot.setSize({ width: w, height: opts.height })
  }).observe(box)
  return plot
}

function revisionBlock(key, rev) {
  const block = el('div', { class: 'revision', 'data-revision': rev.name })
  const title = el('h3', {}, el('span', { class: 'name' }, rev.name), el('span', { class: 'badge info' }), el('span', { class: 'badge panic', hidden: '' }, 'panic'))
  const charts = el('div', { class: 'charts' })
  const r = { key, block, title, charts: {}, data: [], coldList: null, decisionList: null, lastT: 0 }
  for (const def of CHARTS) {
    const box = el('div', { class: `chart chart-${def.id}` })
    charts.append(el('div', { class: 'chart' }, el('h4', {}, def.title), box))
    r.charts[def.id] = { def, box, plot: null }
  }
  r.coldList = el('ol', { class: 'cold-starts' })
  r.decisionList = el('ol', { class: 'decisions' })
  const lists = el('div', { class: 'lists' },
    el('div', {}, el('h4', {}, 'Cold starts (spawn → ready)'), r.coldList),
    el('div', {}, el('h4', {}, 'Scale decisions and their inputs'), r.decisionList))
  block.append(title, charts, lists)
  return r
}

function serviceCard(svc) {
  const section = el('section', { class: 'service', 'data-service': svc.key })
  const split = el('div', { class: 'split', title: 'traffic split' })
  section.append(el('h2', {}, `${svc.name} `, el('span', { class: 'url' }, svc.url)), split)
  return { section, split, revisions: new Map() }
}

function addSample(r, rev, s) {
  if (s.t <= r.lastT) return
  r.lastT = s.t
  r.data.push({ s, target: rev.target })
  const cutoff = s.t - WINDOW_S * 1000
  while (r.data.length > 0 && r.data[0].s.t < cutoff) r.data.shift()
}

function draw(r) {
  const xs = r.data.map((d) => d.s.t / 1000)
  for (const c of Object.values(r.charts)) {
    if (c.plot === null) {
      if (c.box.clientWidth === 0) continue
      c.plot = makeChart(c.def, c.box)
    }
    c.plot.setData([xs, ...c.def.series.map(([, , value]) => r.data.map((d) => value(d.s, d)))])
  }
}

function renderLists(r, rev) {
  const cold = rev.coldStarts.slice().reverse()
  r.coldList.replaceChildren(...(cold.length === 0
    ? [el('li', { class: 'none' }, 'none yet')]
    : cold.map((c) => el('li', { 'data-cold-start': c.instance }, `${clock(c.at)}  ${c.instance}  ${c.ms} ms`))))
  const decisions = rev.decisions.slice().reverse()
  r.decisionList.replaceChildren(...(decisions.length === 0
    ? [el('li', { class: 'none' }, 'none yet')]
    : decisions.map((d) => {
      const dir = d.to > d.from ? 'up' : 'down'
      const observed = d.panicking ? `panic ${num(d.observedPanic)}` : `stable ${num(d.observedStable)}`
      const text = `${clock(d.at)}  ${d.from} → ${d.to}  ${d.cause}, ${d.panicking ? 'PANIC' : 'stable'}; observed ${observed} ` +
        `(stable ${num(d.observedStable)}, panic ${num(d.observedPanic)}), target ${num(d.target, 2)}, ready ${d.readyPods}, ` +
        `recommended ${d.recommended}${d.reason ? `; ${d.reason}` : ''}`
      return el('li', { class: dir }, text)
    })))
}

function renderTick(tick) {
  state.ticks++
  state.last = tick
  document.getElementById('ingress').textContent = `ingress ${tick.ingress}`
  const main = document.getElementById('services')
  const seenSvc = new Set()
  if (tick.services.length > 0) main.querySelector('.empty')?.remove()
  for (const svc of tick.services) {
    seenSvc.add(svc.key)
    let card = state.services.get(svc.key)
    if (card === undefined) {
      card = serviceCard(svc)
      state.services.set(svc.key, card)
      main.append(card.section)
    }
    const seenRev = new Set()
    // Split bar: one segment per revision with a share.
    card.split.replaceChildren(...svc.revisions.filter((r) => r.percent > 0).map((r, i) => {
      const seg = el('span', { style: `flex: ${r.percent} 1 0; background: ${COLORS[i % COLORS.length]}`, title: `${r.name} ${r.percent}%` }, `${r.name} ${r.percent}%`)
      seg.setAttribute('data-split', r.name)
      return seg
    }))
    // Newest revision first.
    for (const rev of svc.revisions.slice().reverse()) {
      const key = `${svc.namespace}/${rev.name}`
      seenRev.add(key)
      let r = state.revisions.get(key)
      if (r === undefined) {
        r = revisionBlock(key, rev)
        for (const s of state.history[key] ?? []) addSample(r, rev, s)
        state.revisions.set(key, r)
        card.revisions.set(key, r)
      }
      card.section.append(r.block)
      addSample(r, rev, rev.latest)
      const s = rev.latest
      r.title.querySelector('.info').textContent =
        `${rev.percent}% traffic${rev.tags.length > 0 ? ` (tags ${rev.tags.join(', ')})` : ''} · ${s.actual} ready / ${s.desired} desired · ` +
        `${rev.metric} target ${num(rev.target, 2)} · ${s.rps} req/s`
      r.title.querySelector('.panic').hidden = !s.panicking
      r.block.dataset.actual = String(s.actual)
      renderLists(r, rev)
      draw(r)
    }
    for (const [key, r] of card.revisions) {
      if (!seenRev.has(key)) {
        r.block.remove()
        card.revisions.delete(key)
        state.revisions.delete(key)
      }
    }
  }
  for (const [key, card] of state.services) {
    if (!seenSvc.has(key)) {
      card.section.remove()
      state.services.delete(key)
      for (const rk of card.revisions.keys()) state.revisions.delete(rk)
    }
  }
}

function connect() {
  const conn = document.getElementById('conn')
  const es = new EventSource('/events')
  es.addEventListener('history', (e) => { state.history = JSON.parse(e.data) })
  es.onmessage = (e) => {
    conn.textContent = `live · ${clock(Date.now())}`
    conn.className = 'conn live'
    renderTick(JSON.parse(e.data))
  }
  es.onerror = () => {
    conn.textContent = 'disconnected: retrying'
    conn.className = 'conn down'
  }
}

connect()
