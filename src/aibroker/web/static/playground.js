/* The AI playground: a chat whose answers stream (Server-Sent Events over fetch) from the
   console's conversation endpoint, with each answer's cost; a prompt template with its
   variables may lead the message (user role) or set the instructions (system role). */
(function () {
  "use strict";
  var root = document.getElementById("playground");
  if (!root) return;
  var form = document.getElementById("chat-form");
  var log = document.getElementById("chat-log");
  var status = document.getElementById("chat-status");
  var errorBox = document.getElementById("chat-error");
  var modelSelect = document.getElementById("chat-model");
  var templateSelect = document.getElementById("chat-template");
  var varsBox = document.getElementById("template-variables");
  var preview = document.getElementById("template-preview");
  var previewButton = document.getElementById("template-preview-button");
  var message = document.getElementById("chat-message");
  var sendButton = document.getElementById("chat-send");
  var totalOut = document.getElementById("chat-total");
  var conversationId = root.dataset.conversation || null;  // an earlier conversation, continued
  var total = Number(root.dataset.total || 0);
  var base = root.dataset.api;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  var money = window.aibrokerMoney;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"content-type": "application/json", "x-csrf-token": csrf()},
      body: JSON.stringify(body)
    });
  }

  async function failure(response) {
    var text = "The request failed (" + response.status + ").";
    try {
      var data = await response.json();
      if (data && data.error && data.error.message) text = data.error.message;
    } catch (e) { /* not JSON: keep the status line */ }
    return text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function bubble(role, text) {
    var item = document.createElement("li");
    item.className = "chat-turn chat-" + role;
    var who = document.createElement("span");
    who.className = "chat-who";
    who.textContent = role === "user" ? "You" : "Assistant";
    var body = document.createElement("p");
    body.className = "chat-text";
    body.textContent = text;
    item.appendChild(who);
    item.appendChild(body);
    log.appendChild(item);
    return item;
  }

  function selectedTemplate() {
    var option = templateSelect && templateSelect.selectedOptions[0];
    if (!option || !option.value) return null;
    return {id: option.value, role: option.dataset.role, variables: JSON.parse(option.dataset.variables || "[]")};
  }

  function drawVariables() {
    varsBox.textContent = "";
    preview.hidden = true;
    var chosen = selectedTemplate();
    previewButton.hidden = !chosen;
    document.getElementById("template-fieldset").hidden = !chosen;
    if (!chosen) return;
    chosen.variables.forEach(function (v, i) {
      var label = document.createElement("label");
      label.htmlFor = "tplvar-" + i;
      label.textContent = v.name + (v.required ? " (required)" : "") + (v.type && v.type !== "any" ? " — " + v.type : "");
      var input = document.createElement("input");
      input.id = "tplvar-" + i;
      input.name = v.name;
      input.dataset.type = v.type || "any";
      if (v["default"] !== undefined && v["default"] !== null) input.placeholder = String(v["default"]);
      if (v.required) input.required = true;
      varsBox.appendChild(label);
      varsBox.appendChild(input);
    });
  }

  function variables() {
    var out = {};
    varsBox.querySelectorAll("input").forEach(function (input) {
      if (input.value === "") return;
      var type = input.dataset.type;
      var value = input.value;
      if (type === "number" || type === "integer") value = Number(value);
      else if (type === "boolean") value = value === "true";
      else if (type === "array" || type === "object") {
        try { value = JSON.parse(value); } catch (e) { /* sent as text: the server names the problem */ }
      }
      out[input.name] = value;
    });
    return out;
  }

  function templateField() {
    var chosen = selectedTemplate();
    return chosen ? {id: chosen.id, variables: variables()} : null;
  }

  async function ensureConversation() {
    if (conversationId) return conversationId;
    var response = await post(base + "/conversations", {model: modelSelect.value || null});
    if (!response.ok) throw new Error(await failure(response));
    conversationId = (await response.json()).id;
    root.dataset.conversation = conversationId;
    return conversationId;
  }

  /* Read an SSE body: yields {event, data} for each complete event. */
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, {stream: true});
      var cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        var raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        var name = "message", data = "";
        raw.split("\n").forEach(function (line) {
          if (line.indexOf("event: ") === 0) name = line.slice(7);
          else if (line.indexOf("data: ") === 0) data += line.slice(6);
        });
        onEvent(name, data ? JSON.parse(data) : null);
      }
    }
  }

  async function send(event) {
    event.preventDefault();
    showError("");
    var text = message.value.trim();
    var template = templateField();
    if (!text && !template) { showError("Write a message (or choose a template)."); message.focus(); return; }
    sendButton.disabled = true;
    status.textContent = "Sending…";
    try {
      var id = await ensureConversation();
      var body = {content: text};
      if (template) body.template = template;
      var response = await post(base + "/conversations/" + encodeURIComponent(id) + "/messages", body);
      if (!response.ok) throw new Error(await failure(response));
      var option = templateSelect && templateSelect.selectedOptions[0];
      bubble("user", template ? "[" + option.textContent.trim() + "] " + text : text);
      message.value = "";
      var answer = bubble("assistant", "");
      var textNode = answer.querySelector(".chat-text");
      answer.setAttribute("aria-busy", "true");
      status.textContent = "The model is answering…";
      await readEvents(response, function (name, data) {
        if (name === "delta") {
          textNode.textContent += data.content;
          answer.dataset.deltas = String(Number(answer.dataset.deltas || 0) + 1);  // how many pieces streamed in
        }
        else if (name === "message") {
          textNode.textContent = data.content;
          var cost = document.createElement("p");
          cost.className = "chat-cost";
          cost.dataset.costMicros = String(data.cost_micros);
          cost.dataset.requestId = data.request_id;
          cost.textContent = "Cost " + money(data.cost_micros) + " · " + data.model + " · " +
            data.usage.input_tokens + " in / " + data.usage.output_tokens + " out tokens";
          answer.appendChild(cost);
          total += data.cost_micros;
          totalOut.textContent = money(total);
          totalOut.dataset.costMicros = String(total);
        } else if (name === "error") {
          showError((data && data.error && data.error.message) || "The model failed while answering.");
        }
      });
      answer.removeAttribute("aria-busy");
      status.textContent = "Answer complete.";
    } catch (e) {
      showError(e.message);
      status.textContent = "";
    } finally {
      sendButton.disabled = false;
    }
  }

  async function previewTemplate() {
    var template = templateField();
    if (!template) return;
    showError("");
    var response = await post(base + "/templates/" + encodeURIComponent(template.id) + "/render", {variables: template.variables});
    if (!response.ok) { showError(await failure(response)); return; }
    var data = await response.json();
    preview.textContent = "[" + data.role + ", version " + data.version + "] " + data.content;
    preview.hidden = false;
  }

  function reset() {
    conversationId = null;
    delete root.dataset.conversation;
    log.textContent = "";
    total = 0;
    totalOut.textContent = money(0);
    totalOut.dataset.costMicros = "0";
    status.textContent = "New chat.";
  }

  form.addEventListener("submit", send);
  modelSelect.addEventListener("change", reset);  // a conversation keeps its model: start a new one
  document.getElementById("chat-new").addEventListener("click", reset);
  if (templateSelect) templateSelect.addEventListener("change", drawVariables);
  if (previewButton) previewButton.addEventListener("click", previewTemplate);
  drawVariables();
})();
