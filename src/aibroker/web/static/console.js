// Light progressive enhancement for the console: every page works without it.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');

  // fetch() for /console/api/...: same-origin cookie plus the session's CSRF header.
  window.aibroker = {
    csrfToken: function () { return meta ? meta.content : ""; },
    fetch: function (url, options) {
      options = options || {};
      options.credentials = "same-origin";
      options.headers = Object.assign({"x-csrf-token": window.aibroker.csrfToken()}, options.headers || {});
      return fetch(url, options);
    }
  };

  document.addEventListener("DOMContentLoaded", function () {
    // The organization switcher submits on change (its button stays for keyboards without JS).
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    // Forms that destroy something ask first.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    // Copy buttons (e.g. a new API key, shown once).
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (!target || !navigator.clipboard) { return; }
        navigator.clipboard.writeText(target.textContent.trim()).then(function () {
          var status = document.getElementById(button.getAttribute("data-copy") + "-status");
          if (status) { status.textContent = "Copied."; }
        });
      });
    });
  });
})();
