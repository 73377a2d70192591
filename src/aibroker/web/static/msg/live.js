// Live parts of the inbox: poll the element's data-live-url (JSON {"parts": {name: html}}) and
// swap each [data-live-part] whose server-rendered HTML changed; new items (by data-id) are
// announced in the page's aria-live region. Without JavaScript the page still works (reload).
(function () {
  "use strict";
  var INTERVAL = 1500;

  function ids(part) {
    var found = {};
    part.querySelectorAll("[data-id]").forEach(function (el) { found[el.getAttribute("data-id")] = true; });
    return found;
  }

  function start(root) {
    var url = root.getAttribute("data-live-url");
    var announcer = root.querySelector("[aria-live]") || document.getElementById("live-announcer");
    var stopped = false;
    var last = {};  // part name -> the HTML it shows
    window.addEventListener("pagehide", function () { stopped = true; });

    function apply(parts) {
      var news = [];
      Object.keys(parts).forEach(function (name) {
        var part = root.querySelector('[data-live-part="' + name + '"]');
        if (!part || last[name] === parts[name]) { return; }
        var before = ids(part);
        part.innerHTML = parts[name];  // server-rendered, escaped by the templates
        last[name] = parts[name];
        part.querySelectorAll("[data-id]").forEach(function (el) {
          if (!before[el.getAttribute("data-id")]) { news.push(el.getAttribute("data-announce") || "New item"); }
        });
      });
      if (news.length && announcer) { announcer.textContent = news.join(". "); }
    }

    function poll() {
      if (stopped || document.hidden) { return schedule(); }
      fetch(url, {credentials: "same-origin", headers: {accept: "application/json"}})
        .then(function (response) {
          if (response.status === 401) { stopped = true; window.location.reload(); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (data) { if (data && data.parts) { apply(data.parts); } })
        .catch(function () { /* offline for a moment: the next poll tries again */ })
        .then(schedule);
    }

    function schedule() { if (!stopped) { window.setTimeout(poll, INTERVAL); } }

    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-url]").forEach(start);
  });
})();
