// The dashboard page: one self-contained HTML document (inline CSS and script, the mesh drawn as
// inline SVG; the machine it runs on may have no internet). It holds no data: it asks for the
// admin token, keeps it in sessionStorage (never in a URL), and polls GET /v1/admin/dashboard
// every second with `Authorization: Bearer`. Everything a peer sent is inserted as text, never as
// markup. Elements carry `data-*` attributes with their state, for people and for the browser test.

const style = `
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d2327; background: #f6f7f7; }
  body { margin: 0 auto; max-width: 1100px; padding: 12px 20px; }
  header { display: flex; gap: 16px; align-items: baseline; }
  h1 { font-size: 20px; margin: 0; }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  #status[data-state='error'] { color: #b32d2e; }
  section { background: #fff; border: 1px solid #dcdcde; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #f0f0f1; font-variant-numeric: tabular-nums; }
  code { font-size: 12px; }
  .up { color: #1a7f37; } .lagging { color: #9a6700; } .down, .unreachable, .false { color: #b32d2e; }
  .unknown, .partial { color: #646970; }
  svg { width: 100%; max-width: 460px; height: auto; display: block; }
  svg line { stroke-width: 4; }
  svg line[data-state='up'] { stroke: #1a7f37; }
  svg line[data-state='lagging'] { stroke: #bf8700; }
  svg line[data-state='down'] { stroke: #cf222e; stroke-dasharray: 8 6; }
  svg line[data-state='unknown'] { stroke: #8c8f94; stroke-dasharray: 2 6; }
  svg circle { stroke: #1d2327; stroke-width: 1.5; }
  svg g[data-health='ok'] circle { fill: #dafbe1; }
  svg g[data-health='degraded'] circle { fill: #fff8c5; }
  svg g[data-health='unreachable'] circle { fill: #ffebe9; }
  svg text { font: 12px system-ui, sans-serif; text-anchor: middle; }
  svg text.id { font-size: 16px; font-weight: 600; }
  .grid { display: grid; grid-template-columns: minmax(300px, 460px) 1fr; gap: 12px; align-items: start; }
`

const script = `
(function () {
  'use strict';
  var tokenKey = 'clearmesh.adminToken';
  var pollMs = 1000;
  var svgNs = 'http://www.w3.org/2000/svg';
  var timer = null;
  var previous = {};

  function byId(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    (children || []).forEach(function (child) { node.append(child); });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(svgNs, tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fill(tbody, rows) { tbody.replaceChildren.apply(tbody, rows); }
  function setStatus(state, text) {
    var status = byId('status');
    status.dataset.state = state;
    status.textContent = text;
  }

  function signedIn(token) {
    byId('login').hidden = true;
    byId('board').hidden = false;
    byId('signout').hidden = false;
    poll(token);
  }
  function signOut(message) {
    sessionStorage.removeItem(tokenKey);
    clearTimeout(timer);
    byId('login').hidden = false;
    byId('board').hidden = true;
    byId('signout').hidden = true;
    byId('login-error').textContent = message;
    setStatus('signed-out', 'signed out');
  }

  function poll(token) {
    fetch('/v1/admin/dashboard', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' })
      .then(function (response) {
        if (response.status === 401) throw { signOut: 'the node refused this admin token' };
        if (!response.ok) throw new Error('the node answered ' + response.status);
        return response.json();
      })
      .then(function (data) {
        render(data);
        setStatus('live', 'node ' + data.node + ' · updated ' + new Date(data.at).toLocaleTimeString());
      })
      .catch(function (error) {
        if (error && error.signOut) return signOut(error.signOut);
        setStatus('error', 'cannot read node: ' + (error && error.message));
      })
      .finally(function () {
        if (sessionStorage.getItem(tokenKey) === token) timer = setTimeout(function () { poll(token); }, pollMs);
      });
  }

  // What one node's view says of its links to another, over every document. Lagging means
  // behind: the peer said it holds what this node lacks (a state vector only grows, so that is
  // never stale). Ahead is by the peer's last word, which a quiet peer may not have updated.
  function side(view, other) {
    var seen = { by: view.node, up: 0, total: view.documents.length, behind: 0, ahead: 0, backlog: 0 };
    view.documents.forEach(function (doc) {
      var link = doc.links.find(function (l) { return l.peer === other; });
      if (!link || !link.up) return;
      seen.up += 1;
      seen.behind = Math.max(seen.behind, link.behind);
      seen.ahead = Math.max(seen.ahead, link.ahead);
      seen.backlog += link.unacknowledged;
    });
    return seen;
  }

  function pairs(ids, views) {
    var out = [];
    ids.forEach(function (x, i) {
      ids.slice(i + 1).forEach(function (y) {
        var sides = [x, y].filter(function (id) { return views[id]; }).map(function (id) {
          return side(views[id], id === x ? y : x);
        });
        var state = sides.length === 0 ? 'unknown'
          : sides.some(function (s) { return s.up < s.total; }) ? 'down'
          : sides.some(function (s) { return s.behind > 0; }) ? 'lagging' : 'up';
        out.push({ id: x + '-' + y, ends: [x, y], state: state, sides: sides });
      });
    });
    return out;
  }

  function drawGraph(ids, answers, links) {
    var graph = byId('graph');
    var center = { x: 230, y: 175 };
    var radius = ids.length > 1 ? 115 : 0;
    var at = {};
    // Labels sit outside the circle of nodes, away from the lines between them.
    var outward = function (p, distance) {
      var dx = p.x - center.x, dy = p.y - center.y, length = Math.hypot(dx, dy) || 1;
      return { x: p.x + (dx / length) * distance, y: p.y + (dy / length) * distance };
    };
    ids.forEach(function (id, i) {
      var angle = -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
      at[id] = { x: center.x + radius * Math.cos(angle), y: center.y + radius * Math.sin(angle) };
    });
    var items = [];
    links.forEach(function (link) {
      var a = at[link.ends[0]], b = at[link.ends[1]];
      var label = link.state;
      if (link.state === 'down') {
        var worst = link.sides.reduce(function (n, s) { return Math.min(n, s.up); }, Infinity);
        label = 'down (' + (worst === Infinity ? 0 : worst) + '/' + link.sides[0].total + ' up)';
      }
      if (link.state === 'lagging') {
        label = 'lag ' + link.sides.reduce(function (n, s) { return Math.max(n, s.behind); }, 0);
      }
      var group = svg('g', { 'data-link': link.id, 'data-state': link.state });
      group.append(svg('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, 'data-state': link.state }));
      var middle = outward({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, 16);
      group.append(svg('text', { x: middle.x, y: middle.y + 4, class: link.state }, label));
      items.push(group);
    });
    answers.forEach(function (answer) {
      var p = at[answer.node];
      var degraded = links.some(function (l) { return l.ends.indexOf(answer.node) >= 0 && l.state !== 'up'; });
      var health = !answer.reachable ? 'unreachable' : degraded ? 'degraded' : 'ok';
      var group = svg('g', { 'data-node': answer.node, 'data-reachable': String(answer.reachable), 'data-health': health });
      group.append(svg('circle', { cx: p.x, cy: p.y, r: 28 }));
      group.append(svg('text', { x: p.x, y: p.y + 5, class: 'id' }, answer.node));
      var below = outward(p, 44);
      group.append(svg('text', { x: below.x, y: below.y + 4, class: answer.reachable ? 'up' : 'unreachable' },
        answer.reachable ? (degraded ? 'reachable, links down' : 'reachable') : 'unreachable'));
      items.push(group);
    });
    graph.replaceChildren.apply(graph, items);
  }

  function linkRows(links) {
    return links.map(function (link) {
      var seen = link.sides.map(function (s) { return s.by + ': ' + s.up + '/' + s.total; }).join(', ');
      var lag = link.sides.map(function (s) { return s.by + ': ' + s.behind + ' / ' + s.ahead; }).join(', ');
      var backlog = link.sides.reduce(function (n, s) { return n + s.backlog; }, 0);
      return el('tr', { 'data-link': link.id, 'data-state': link.state }, [
        el('td', {}, [link.ends.join(' – ')]),
        el('td', { class: link.state }, [link.state]),
        el('td', {}, [seen || 'no view of either end']),
        el('td', {}, [lag || '—']),
        el('td', {}, [String(backlog)]),
      ]);
    });
  }

  function rate(node, view) {
    var before = previous[node];
    previous[node] = { at: view.at, writes: view.writes, requests: view.requests };
    if (!before || view.at <= before.at) return null;
    var seconds = (view.at - before.at) / 1000;
    var per = function (now, then) { return Math.max(0, now - then) / seconds; };
    return {
      local: per(view.writes.local, before.writes.local),
      peer: per(view.writes.peer, before.writes.peer),
      requests: per(view.requests, before.requests),
    };
  }

  function breakersOf(view) {
    var on = [];
    if (view.breakers.withdrawals !== 'normal') on.push('withdrawals ' + view.breakers.withdrawals);
    Object.keys(view.breakers.instruments).forEach(function (symbol) {
      var mode = view.breakers.instruments[symbol];
      if (mode !== 'normal') on.push(symbol + ' ' + mode);
    });
    return on;
  }

  function nodeRows(answers) {
    return answers.map(function (answer) {
      if (!answer.reachable) {
        return el('tr', { 'data-node': answer.node, 'data-reachable': 'false' }, [
          el('td', {}, [answer.node]),
          el('td', { class: 'unreachable' }, ['unreachable']),
          el('td', { colspan: '6' }, [answer.error]),
        ]);
      }
      var view = answer.view;
      var rates = rate(answer.node, view);
      var fixed = function (n) { return rates ? n.toFixed(1) : '…'; };
      var pending = view.documents.filter(function (d) { return d.pending; }).length;
      var damaged = view.documents.filter(function (d) { return d.damaged; }).length;
      var breakers = breakersOf(view);
      return el('tr', { 'data-node': answer.node, 'data-reachable': 'true' }, [
        el('td', {}, [answer.node]),
        el('td', { class: 'up' }, ['reachable']),
        el('td', { 'data-rate': 'local' }, [fixed(rates && rates.local)]),
        el('td', { 'data-rate': 'peer' }, [fixed(rates && rates.peer)]),
        el('td', {}, [fixed(rates && rates.requests)]),
        el('td', { 'data-pending': String(pending) }, [String(pending)]),
        el('td', { class: damaged > 0 ? 'down' : '' }, [String(damaged)]),
        el('td', { 'data-breakers': String(breakers.length), class: breakers.length ? 'down' : '' }, [breakers.join(', ') || 'none']),
        el('td', { class: view.findings.count > 0 ? 'down' : '' }, [String(view.findings.count)]),
      ]);
    });
  }

  function documentRows(ids, views) {
    var names = [];
    ids.forEach(function (id) {
      if (!views[id]) return;
      views[id].documents.forEach(function (d) { if (names.indexOf(d.doc) < 0) names.push(d.doc); });
    });
    return names.map(function (name) {
      var docs = ids.map(function (id) {
        return views[id] && views[id].documents.find(function (d) { return d.doc === name; });
      });
      var held = docs.filter(Boolean);
      var first = held[0];
      var same = held.every(function (d) {
        return !d.pending && !d.damaged && d.contentDigest === first.contentDigest &&
          d.stateVectorDigest === first.stateVectorDigest;
      });
      var agree = !same ? 'false' : held.length < ids.length ? 'partial' : 'true';
      var cells = docs.map(function (d) {
        if (!d) return el('td', { class: 'unknown' }, ['—']);
        var text = (d.contentDigest || 'damaged').slice(0, 10) + (d.pending ? ' pending' : '');
        return el('td', {}, [el('code', {}, [text])]);
      });
      var word = agree === 'true' ? 'agree' : agree === 'partial' ? 'agree (of reachable)' : 'differ';
      return el('tr', { 'data-doc': name, 'data-agree': agree }, [
        el('td', {}, [name]),
        el('td', { class: agree }, [word]),
      ].concat(cells));
    });
  }

  function settlementRows(ids, views) {
    var instruments = [];
    ids.forEach(function (id) {
      (views[id] ? views[id].settlements : []).forEach(function (s) {
        if (instruments.indexOf(s.instrument) < 0) instruments.push(s.instrument);
      });
    });
    return instruments.map(function (symbol) {
      return el('tr', { 'data-instrument': symbol }, [el('td', {}, [symbol])].concat(ids.map(function (id) {
        var s = views[id] && views[id].settlements.find(function (x) { return x.instrument === symbol; });
        return el('td', {}, [!s ? '—' : s.lastEpoch === null ? 'none yet' : 'epoch ' + s.lastEpoch + ' (' + s.epochs + ' settled)']);
      })));
    });
  }

  function findingItems(ids, views) {
    var seen = {};
    var items = [];
    ids.forEach(function (id) {
      (views[id] ? views[id].findings.latest : []).forEach(function (f) {
        if (seen[f.id]) return;
        seen[f.id] = true;
        items.push(el('li', { 'data-finding': f.kind }, [f.invariant + ' ' + f.kind + ': ' + f.message]));
      });
    });
    return items.length ? items : [el('li', { class: 'up' }, ['none recorded'])];
  }

  function header(row, ids) {
    row.replaceChildren.apply(row, row.dataset.fixed.split(',').concat(ids).map(function (t) {
      return el('th', {}, [t]);
    }));
  }

  function render(data) {
    var answers = data.nodes.slice().sort(function (x, y) { return x.node < y.node ? -1 : 1; });
    var ids = answers.map(function (a) { return a.node; });
    var views = {};
    answers.forEach(function (a) { if (a.reachable) views[a.node] = a.view; });
    var links = pairs(ids, views);
    drawGraph(ids, answers, links);
    fill(byId('links').tBodies[0], linkRows(links));
    fill(byId('nodes').tBodies[0], nodeRows(answers));
    header(byId('documents').tHead.rows[0], ids);
    fill(byId('documents').tBodies[0], documentRows(ids, views));
    header(byId('settlements').tHead.rows[0], ids);
    fill(byId('settlements').tBodies[0], settlementRows(ids, views));
    byId('findings').replaceChildren.apply(byId('findings'), findingItems(ids, views));
  }

  byId('login').addEventListener('submit', function (event) {
    event.preventDefault();
    var token = byId('token').value.trim();
    byId('token').value = '';
    sessionStorage.setItem(tokenKey, token);
    byId('login-error').textContent = '';
    signedIn(token);
  });
  byId('signout').addEventListener('click', function () { signOut(''); });
  var kept = sessionStorage.getItem(tokenKey);
  if (kept) signedIn(kept);
})();
`

export const dashboardPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clearmesh · dashboard</title>
<style>${style}</style>
</head>
<body>
<header>
  <h1>clearmesh</h1>
  <span id="status" data-state="signed-out">signed out</span>
  <button id="signout" type="button" hidden>Sign out</button>
</header>
<form id="login">
  <p>The admin token stays in this tab (sessionStorage) and goes only in the Authorization header.</p>
  <label>Admin token <input id="token" type="password" autocomplete="off" required></label>
  <button type="submit">Open</button>
  <p id="login-error" role="alert"></p>
</form>
<main id="board" hidden>
  <section class="grid">
    <div><h2>Mesh</h2><svg id="graph" viewBox="0 0 460 320" role="img" aria-label="nodes and links"></svg></div>
    <div><h2>Links</h2>
      <table id="links"><thead><tr><th>link</th><th>state</th><th>documents up, by node</th>
        <th>behind / ahead (clock units, by the peer's last word)</th><th>backlog</th></tr></thead><tbody></tbody></table>
    </div>
  </section>
  <section><h2>Nodes</h2>
    <table id="nodes"><thead><tr><th>node</th><th>state</th><th>local writes/s</th><th>peer writes/s</th>
      <th>requests/s</th><th>pending docs</th><th>damaged</th><th>breakers</th><th>findings</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Documents (content digest per node)</h2>
    <table id="documents"><thead><tr data-fixed="document,agreement"></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Settlement (last epoch per instrument)</h2>
    <table id="settlements"><thead><tr data-fixed="instrument"></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Findings and invariant violations</h2><ul id="findings"></ul></section>
</main>
<script>${script}</script>
</body>
</html>
`
