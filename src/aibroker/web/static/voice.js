/* The voice test call: the console mints a short-lived session token for the signed-in
   member (no API key reaches the browser), then the microphone streams to the session's
   WebSocket as OpenAI Realtime `input_audio_buffer.append` events; transcripts and events
   are shown as they arrive, the answer's audio is played. */
(function () {
  "use strict";
  var root = document.getElementById("voice");
  if (!root) return;
  var startButton = document.getElementById("voice-start");
  var stopButton = document.getElementById("voice-stop");
  var modelSelect = document.getElementById("voice-model");
  var state = document.getElementById("voice-state");
  var transcript = document.getElementById("voice-transcript");
  var events = document.getElementById("voice-events");
  var errorBox = document.getElementById("voice-error");
  var summary = document.getElementById("voice-summary");
  var call = null;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function setState(text) {
    state.textContent = text;
    root.dataset.state = text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function line(role, text) {
    var item = document.createElement("li");
    item.className = "voice-" + role;
    item.dataset.role = role;
    var who = document.createElement("strong");
    who.textContent = role === "user" ? "You: " : "Assistant: ";
    item.appendChild(who);
    item.appendChild(document.createTextNode(text));
    transcript.appendChild(item);
  }

  function logEvent(type) {
    var item = document.createElement("li");
    item.textContent = type;
    events.appendChild(item);
    while (events.children.length > 200) events.removeChild(events.firstChild);
  }

  function toBase64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  /* Queue a PCM16 24 kHz delta after what is already playing. */
  function play(delta) {
    var raw = atob(delta), samples = new Float32Array(raw.length >> 1);
    for (var i = 0; i < samples.length; i++) {
      var v = raw.charCodeAt(2 * i) | (raw.charCodeAt(2 * i + 1) << 8);
      samples[i] = (v >= 0x8000 ? v - 0x10000 : v) / 0x8000;
    }
    if (!samples.length) return;
    var buffer = call.audio.createBuffer(1, samples.length, 24000);
    buffer.copyToChannel(samples, 0);
    var source = call.audio.createBufferSource();
    source.buffer = buffer;
    source.connect(call.audio.destination);
    var at = Math.max(call.audio.currentTime, call.playAt);
    source.start(at);
    call.playAt = at + buffer.duration;
  }

  function onEvent(event) {
    var data = JSON.parse(event.data);
    logEvent(data.type);
    if (data.type === "session.created") {
      setState("connected");
    } else if (data.type === "conversation.item.input_audio_transcription.completed") {
      line("user", data.transcript);
    } else if (data.type === "response.output_audio_transcript.done" || data.type === "response.output_text.done") {
      line("assistant", data.transcript || data.text);
    } else if (data.type === "response.output_audio.delta") {
      play(data.delta);
    } else if (data.type === "error") {
      showError((data.error && data.error.message) || "The voice session reported an error.");
    }
  }

  async function start() {
    showError("");
    summary.hidden = true;
    transcript.textContent = "";
    events.textContent = "";
    startButton.disabled = true;
    setState("starting");
    try {
      var response = await fetch(root.dataset.api, {
        method: "POST", credentials: "same-origin",
        headers: {"content-type": "application/json", "x-csrf-token": csrf()},
        body: JSON.stringify({model: modelSelect.value || null})
      });
      var opened = await response.json();
      if (!response.ok) throw new Error((opened.error && opened.error.message) || "The call could not start.");
      var stream = await navigator.mediaDevices.getUserMedia({audio: true});
      var audio = new AudioContext();
      await audio.audioWorklet.addModule(root.dataset.worklet);
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + opened.ws_path);
      call = {id: opened.session_id, ws: ws, stream: stream, audio: audio, playAt: 0};
      root.dataset.session = opened.session_id;
      ws.onmessage = onEvent;
      ws.onclose = function (e) { finish(e.code, e.reason); };
      ws.onopen = function () {
        var source = audio.createMediaStreamSource(stream);
        var capture = new AudioWorkletNode(audio, "pcm16-capture");
        capture.port.onmessage = function (m) {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "input_audio_buffer.append", audio: toBase64(m.data)}));
        };
        source.connect(capture);
        call.capture = capture;
      };
      stopButton.disabled = false;
      stopButton.focus();
    } catch (e) {
      showError(e.name === "NotAllowedError" ? "The browser did not allow the microphone." : e.message);
      cleanup();
      setState("idle");
      startButton.disabled = false;
    }
  }

  function cleanup() {
    if (!call) return;
    if (call.capture) call.capture.port.onmessage = null;
    call.stream.getTracks().forEach(function (t) { t.stop(); });
    call.audio.close();
  }

  async function finish(code, reason) {
    if (!call) return;
    var id = call.id;
    cleanup();
    call = null;
    stopButton.disabled = true;
    startButton.disabled = false;
    setState(code === 1000 ? "ended" : "closed (" + code + (reason ? " " + reason : "") + ")");
    // The session's record is written as it closes: read it until it says so.
    for (var i = 0; i < 20; i++) {
      var response = await fetch(root.dataset.api + "/" + encodeURIComponent(id), {credentials: "same-origin"});
      if (!response.ok) return;
      var session = await response.json();
      if (session.status !== "active" && session.status !== "pending") {
        summary.textContent = "Session " + session.id + ": " + session.status + ", " + (session.duration_ms / 1000).toFixed(1) +
          " s, " + session.responses + (session.responses === 1 ? " response" : " responses") + ", cost " + window.aibrokerMoney(session.cost_micros) + ".";
        summary.dataset.costMicros = String(session.cost_micros);
        summary.hidden = false;
        return;
      }
      await new Promise(function (r) { setTimeout(r, 500); });
    }
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", function () { if (call) call.ws.close(1000); });
})();
