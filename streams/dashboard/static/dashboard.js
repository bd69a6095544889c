// disposal-watch dashboard: served at /static/dashboard.js (the CSP allows no inline script).
// Keeps the alert list live from the SSE feed and shows the funnel points' numbers on hover/focus.
(function () {
  // the pages' words (rule, force and category names) arrive as JSON data, never as script
  const data = document.getElementById('dw-words');
  const WORDS = data ? JSON.parse(data.textContent) : {};
  const list = document.getElementById('firing');
  const resolved = document.getElementById('resolved');
  const status = document.getElementById('live');
  if (!list) return;
  const show = document.getElementById('show-resolved');
  if (show) show.addEventListener('change', () => { resolved.hidden = !show.checked; });
  function item(a) {
    const li = document.createElement('li');
    li.dataset.fingerprint = a.fingerprint;
    li.className = (a.state === 'firing' ? 'sev-' + a.severity : 'resolved');
    const title = document.createElement('strong');
    title.textContent = a.rule_words + ' · ';
    const force = document.createElement('a');
    force.href = '/force/' + encodeURIComponent(a.force_id);
    force.textContent = a.force_name;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = a.meta;
    const summary = document.createElement('p');
    summary.textContent = a.summary;
    li.append(title, force, meta, summary);
    return li;
  }
  const source = new EventSource('/api/alerts/stream?last_event_id=' + list.dataset.after);
  source.addEventListener('open', () => { status.textContent = 'live'; });
  source.addEventListener('error', () => { status.textContent = 'reconnecting…'; });
  source.addEventListener('alert', (ev) => {
    const a = JSON.parse(ev.data);
    const words = WORDS;
    a.rule_words = (words.rules || {})[a.rule_id] || a.rule_id;
    a.force_name = (words.forces || {})[a.force_id] || a.force_id;
    a.meta = (words.categories || {})[a.category] || a.category;
    a.meta += ' · ' + a.severity + ' severity · ' + (a.state === 'firing' ? 'firing since ' : 'resolved ') + a.transition_at.slice(0, 16).replace('T', ' ') + ' UTC';
    document.querySelectorAll('[data-fingerprint="' + CSS.escape(a.fingerprint) + '"]').forEach((el) => el.remove());
    (a.state === 'firing' ? list : resolved).prepend(item(a));
    const none = document.getElementById('none-firing');
    if (none) none.hidden = list.children.length > 0;
  });
  const tip = document.createElement('div');
  tip.className = 'tip';
  document.body.append(tip);
  function showTip(el) {
    const r = el.getBoundingClientRect();
    tip.textContent = el.getAttribute('aria-label');
    tip.style.left = (window.scrollX + r.right + 6) + 'px';
    tip.style.top = (window.scrollY + r.top - 6) + 'px';
    tip.style.display = 'block';
  }
  document.querySelectorAll('circle[data-force]').forEach((c) => {
    c.addEventListener('mouseenter', () => showTip(c));
    c.addEventListener('focus', () => showTip(c));
    c.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    c.addEventListener('blur', () => { tip.style.display = 'none'; });
  });
})();
