/* Recordings: a chunked upload (XMLHttpRequest, for its upload progress events) to the
   console's endpoints, with a progress bar; then the list's statuses refresh without a
   reload until every recording is analyzed or failed. */
(function () {
  "use strict";
  var FINAL = {analyzed: true, failed: true};
  /* A recording's own page: follow its status; once final, reload for the analysis. */
  var detail = document.getElementById("recording-detail");
  if (detail) {
    var follow = async function () {
      try {
        var response = await fetch(detail.dataset.api + "/statuses?ids=" + encodeURIComponent(detail.dataset.id), {credentials: "same-origin"});
        var rec = response.ok ? (await response.json()).data[0] : null;
        if (rec && FINAL[rec.status]) { location.reload(); return; }
        if (rec) document.getElementById("recording-status").textContent = rec.status + " (" + rec.progress + "%)";
      } catch (e) { /* offline for a moment: try again */ }
      setTimeout(follow, Number(detail.dataset.pollMs || 2000));
    };
    if (!FINAL[detail.dataset.status] && detail.dataset.status !== "uploading") setTimeout(follow, Number(detail.dataset.pollMs || 2000));
    return;
  }
  var root = document.getElementById("recordings");
  if (!root) return;
  var base = root.dataset.api;
  var form = document.getElementById("upload-form");
  var fileInput = document.getElementById("upload-file");
  var titleInput = document.getElementById("upload-title-input");
  var bar = document.getElementById("upload-progress");
  var barText = document.getElementById("upload-progress-text");
  var errorBox = document.getElementById("upload-error");
  var button = document.getElementById("upload-button");
  var table = document.getElementById("recordings-body");
  var live = document.getElementById("recordings-live");
  var timer = null;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function message(xhrOrResponse, text) {
    try {
      var data = JSON.parse(text);
      if (data && data.error && data.error.message) return data.error.message;
    } catch (e) { /* not JSON */ }
    return "The upload failed (" + xhrOrResponse.status + ").";
  }

  /* One request with upload progress: resolves with the parsed JSON answer. */
  function send(url, body, type, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.withCredentials = true;
      xhr.setRequestHeader("x-csrf-token", csrf());
      if (type) xhr.setRequestHeader("content-type", type);
      if (onProgress) xhr.upload.onprogress = function (e) { onProgress(e.loaded); };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText || "{}"));
        else reject(new Error(message(xhr, xhr.responseText)));
      };
      xhr.onerror = function () { reject(new Error("The connection failed during the upload.")); };
      xhr.send(body);
    });
  }

  function progress(done, total) {
    var pct = total ? Math.min(100, Math.floor(done * 100 / total)) : 0;
    bar.value = pct;
    bar.setAttribute("aria-valuenow", String(pct));
    barText.textContent = pct + "%";
  }

  async function upload(event) {
    event.preventDefault();
    errorBox.hidden = true;
    var file = fileInput.files[0];
    if (!file) { errorBox.textContent = "Choose an audio file first."; errorBox.hidden = false; fileInput.focus(); return; }
    var chunk = Number(root.dataset.chunkBytes);
    var chunks = Math.max(1, Math.ceil(file.size / chunk));
    button.disabled = true;
    bar.hidden = false;
    progress(0, file.size);
    live.textContent = "Uploading " + file.name + "…";
    try {
      var rec = await send(base, JSON.stringify({title: titleInput.value || file.name, content_type: file.type || null,
                                                 total_bytes: file.size, total_chunks: chunks}), "application/json");
      var sent = 0;
      for (var i = 0; i < chunks; i++) {
        var piece = file.slice(i * chunk, Math.min(file.size, (i + 1) * chunk));
        await send(base + "/" + encodeURIComponent(rec.id) + "/chunks/" + i, piece, "application/octet-stream",
                   function (loaded) { progress(sent + loaded, file.size); });
        sent += piece.size;
        progress(sent, file.size);
      }
      var done = await send(base + "/" + encodeURIComponent(rec.id) + "/finalize", null, null);
      live.textContent = "Uploaded " + file.name + ": " + done.status + ".";
      form.reset();
      upsert(done);
      watch();
    } catch (e) {
      errorBox.textContent = e.message;
      errorBox.hidden = false;
      live.textContent = "";
    } finally {
      button.disabled = false;
    }
  }

  function cell(row, name) { return row.querySelector('[data-field="' + name + '"]'); }

  /* Add a recording's row (newest first) or update its status in place. */
  function upsert(rec) {
    var row = table.querySelector('tr[data-id="' + rec.id + '"]');
    if (!row) {
      var template = document.getElementById("recording-row");
      row = template.content.firstElementChild.cloneNode(true);
      row.dataset.id = rec.id;
      var link = row.querySelector("a");
      link.href = root.dataset.pages + "/" + encodeURIComponent(rec.id);
      link.textContent = rec.title || rec.id;
      cell(row, "created").textContent = new Date(rec.created_at).toLocaleString();
      table.insertBefore(row, table.firstElementChild);
      var empty = document.getElementById("recordings-empty");
      if (empty) empty.remove();
    }
    var before = row.dataset.status;
    row.dataset.status = rec.status;
    cell(row, "status").textContent = rec.status + (FINAL[rec.status] || rec.status === "uploading" ? "" : " (" + rec.progress + "%)");
    if (rec.failure) cell(row, "status").textContent += ": " + rec.failure.code;
    if (rec.duration_seconds !== undefined) {
      cell(row, "duration").textContent = rec.duration_seconds === null ? "—" : rec.duration_seconds.toFixed(1) + " s";
    }
    cell(row, "cost").textContent = window.aibrokerMoney(rec.cost_micros);
    cell(row, "cost").dataset.costMicros = String(rec.cost_micros);
    if (before && before !== rec.status) live.textContent = (rec.title || rec.id) + " is " + rec.status + ".";
  }

  function pending() {
    return Array.prototype.filter.call(table.querySelectorAll("tr[data-id]"), function (row) {
      // an upload left unfinished advances only when its uploader sends the rest
      return !FINAL[row.dataset.status] && row.dataset.status !== "uploading";
    }).map(function (row) { return row.dataset.id; });
  }

  async function refresh() {
    timer = null;
    var ids = pending();
    if (!ids.length) return;
    try {
      var response = await fetch(base + "/statuses?ids=" + ids.map(encodeURIComponent).join(","), {credentials: "same-origin"});
      if (response.ok) (await response.json()).data.forEach(upsert);
    } catch (e) { /* offline for a moment: the next tick tries again */ }
    watch();
  }

  function watch() {
    if (!timer && pending().length) timer = setTimeout(refresh, Number(root.dataset.pollMs || 2000));
  }

  form.addEventListener("submit", upload);
  watch();
})();
