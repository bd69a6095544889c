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
  // an alert arriving live: a copy of the page's own item template (render.item_template),
  // its fields filled as text
  const template = document.getElementById('alert-item');
  function item(a) {
    const li = template.content.firstElementChild.cloneNode(true);
    li.dataset.fingerprint = a.fingerprint;
    li.className = (a.state === 'firing' ? 'sev-' + a.severity : 'resolved');
    const word = (kind, key) => (WORDS[kind] || {})[key] || key;
    const fields = {
      rule: word('rules', a.rule_id),
      force: word('forces', a.force_id),
      category: word('categories', a.category),
      severity: a.severity,
      state: word('states', a.state === 'firing' ? 'firing' : 'resolved'),
      when: a.transition_at.slice(0, 16).replace('T', ' '),
      summary: a.summary || '',
    };
    li.querySelectorAll('[data-field]').forEach((el) => { el.textContent = fields[el.dataset.field]; });
    li.querySelector('a[data-field="force"]').href = '/force/' + encodeURIComponent(a.force_id);
    return li;
  }
  const source = new EventSource('/api/alerts/stream?last_event_id=' + list.dataset.after);
  source.addEventListener('open', () => { status.textContent = 'live'; });
  source.addEventListener('error', () => { status.textContent = 'reconnecting…'; });
  source.addEventListener('alert', (ev) => {
    const a = JSON.parse(ev.data);
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
