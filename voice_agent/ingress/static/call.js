// The patient page: one WebRTC call to the clinic's voice agent (pipecat's SmallWebRTC signalling).
// Vanilla JS, no dependencies. Nothing is stored (no cookies, no storage) and no transcript is shown:
// the only thing the page ever displays about the call is its status.
"use strict";

(() => {
  // ?raw=1 turns off the browser's echo cancellation, noise suppression and gain control. For tests:
  // Chromium's fake microphone is mangled by them. Callers on real microphones want them on.
  const RAW = new URLSearchParams(window.location.search).get("raw") === "1";
  const ICE_GATHERING_CAP_MS = 2000; // then send what we have; later candidates are trickled
  const DISCONNECT_GRACE_MS = 5000; // "disconnected" may recover on its own; give it a moment
  const SPEAKING_LEVEL = 0.01; // RMS of the agent's audio above which it counts as speaking
  const LISTENING_AFTER_MS = 700; // quiet this long before "listening" (no flicker between words)

  const MESSAGES = {
    ready: "Ready",
    microphone: "Asking for your microphone…",
    connecting: "Connecting…",
    connected: "Connected",
    speaking: "Connected — the assistant is speaking",
    listening: "Connected — the assistant is listening",
    ended: "Call ended",
    denied: "Microphone access was denied. Allow this page to use your microphone, then press Call again.",
    noMicrophone: "No microphone was found. Connect one, then press Call again.",
    microphoneFailed: "Your microphone could not be started. Check it is not in use, then try again.",
    busy: "All of the clinic's lines are busy. Please try again in a few minutes.",
    failed: "The call could not be connected. Please check your connection and try again.",
    dropped: "The call was interrupted. Please call again.",
    unsupported: "This browser cannot make calls from this page. Please use an up-to-date browser.",
  };

  const callButton = document.getElementById("call");
  const hangupButton = document.getElementById("hangup");
  const statusLine = document.getElementById("status");
  const remoteAudio = document.getElementById("remote");

  /** The call in progress, or null. Every await re-checks it, so Hang up wins over a slow step. */
  let current = null;

  function show(text, isError = false) {
    if (statusLine.textContent !== text) statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  function setButtons(inCall) {
    callButton.disabled = inCall;
    hangupButton.disabled = !inCall;
  }

  async function startCall() {
    if (current) return;
    if (!navigator.mediaDevices?.getUserMedia || !window.RTCPeerConnection) {
      show(MESSAGES.unsupported, true);
      return;
    }
    const call = {
      pc: null,
      channel: null,
      mic: null,
      pcId: null,
      lateCandidates: [],
      offerSent: false,
      connected: false,
      graceTimer: null,
      meter: null,
      // Created on the click itself, so the browser's autoplay policy lets it run.
      audioContext: window.AudioContext ? new AudioContext() : null,
    };
    current = call;
    setButtons(true);
    show(MESSAGES.microphone);

    try {
      call.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: !RAW, noiseSuppression: !RAW, autoGainControl: !RAW },
        video: false,
      });
    } catch (error) {
      endCall(call, microphoneMessage(error), true);
      return;
    }
    if (call !== current) return stopTracks(call.mic);
    show(MESSAGES.connecting);

    try {
      await connect(call);
    } catch (error) {
      if (call === current) endCall(call, error.busy ? MESSAGES.busy : MESSAGES.failed, true);
    }
  }

  async function connect(call) {
    const ice = await fetchJson("/api/ice", { method: "GET" });
    if (call !== current) return;
    const pc = new RTCPeerConnection({ iceServers: ice.iceServers || [] });
    call.pc = pc;

    // The server expects the transceivers in this order: audio (both ways), then video (never sent).
    pc.addTransceiver(call.mic.getAudioTracks()[0], { direction: "sendrecv", streams: [call.mic] });
    pc.addTransceiver("video", { direction: "recvonly" });
    // The server says "peerLeft" here when it ends the call (after its goodbye).
    call.channel = pc.createDataChannel("signalling", { ordered: true });
    call.channel.addEventListener("message", (event) => onServerMessage(call, event.data));

    pc.addEventListener("track", (event) => {
      if (event.track.kind !== "audio") return;
      const stream = event.streams[0] || new MediaStream([event.track]);
      remoteAudio.srcObject = stream;
      remoteAudio.play().catch(() => {}); // autoplay: the Call click already allowed it
      startMeter(call, stream);
    });
    pc.addEventListener("icecandidate", (event) => {
      if (!event.candidate || !call.offerSent) return; // before the offer: already in its SDP
      call.lateCandidates.push(event.candidate);
      sendLateCandidates(call);
    });
    pc.addEventListener("connectionstatechange", () => onConnectionState(call));

    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc);
    if (call !== current) return;

    call.offerSent = true;
    const answer = await fetchJson("/api/offer", {
      method: "POST",
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
    if (call !== current) return;
    call.pcId = answer.pc_id;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    sendLateCandidates(call);
  }

  function iceGatheringDone(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const timer = setTimeout(resolve, ICE_GATHERING_CAP_MS);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function sendLateCandidates(call) {
    if (!call.pcId || call.lateCandidates.length === 0 || call !== current) return;
    const candidates = call.lateCandidates.splice(0).map((c) => ({
      candidate: c.candidate,
      sdp_mid: c.sdpMid,
      sdp_mline_index: c.sdpMLineIndex,
    }));
    fetchJson("/api/offer", {
      method: "PATCH",
      body: JSON.stringify({ pc_id: call.pcId, candidates }),
    }).catch(() => {}); // the candidates in the offer are usually enough
  }

  function onConnectionState(call) {
    if (call !== current) return;
    const state = call.pc.connectionState;
    clearTimeout(call.graceTimer);
    if (state === "connected") {
      call.connected = true;
      if (!call.meter) show(MESSAGES.connected);
    } else if (state === "disconnected") {
      call.graceTimer = setTimeout(() => {
        if (call === current) endCall(call, MESSAGES.dropped, true);
      }, DISCONNECT_GRACE_MS);
    } else if (state === "failed") {
      endCall(call, call.connected ? MESSAGES.dropped : MESSAGES.failed, true);
    } else if (state === "closed") {
      endCall(call, MESSAGES.ended);
    }
  }

  function onServerMessage(call, data) {
    // Only signalling is read; nothing the server sends is ever shown.
    try {
      const message = JSON.parse(data);
      if (message.type === "signalling" && message.message?.type === "peerLeft" && call === current) {
        endCall(call, MESSAGES.ended);
      }
    } catch {
      // not JSON: not for us
    }
  }

  /** Speaking or listening, from the level of the agent's audio (WebAudio). */
  function startMeter(call, stream) {
    if (!call.audioContext || call.meter) return;
    const analyser = call.audioContext.createAnalyser();
    analyser.fftSize = 1024;
    call.audioContext.createMediaStreamSource(stream).connect(analyser); // not to the speakers
    call.audioContext.resume().catch(() => {});
    const samples = new Float32Array(analyser.fftSize);
    let lastSound = 0;
    let speaking = null;
    call.meter = setInterval(() => {
      if (call !== current || !call.connected) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const now = performance.now();
      if (Math.sqrt(sum / samples.length) > SPEAKING_LEVEL) lastSound = now;
      const isSpeaking = now - lastSound < LISTENING_AFTER_MS;
      if (isSpeaking !== speaking) {
        speaking = isSpeaking;
        show(isSpeaking ? MESSAGES.speaking : MESSAGES.listening);
      }
    }, 100);
  }

  function endCall(call, message, isError = false) {
    if (call !== current) return;
    current = null;
    clearTimeout(call.graceTimer);
    clearInterval(call.meter);
    if (call.channel) call.channel.close();
    if (call.pc) call.pc.close();
    stopTracks(call.mic);
    if (call.audioContext) call.audioContext.close().catch(() => {});
    remoteAudio.srcObject = null;
    setButtons(false);
    show(message, isError);
  }

  function stopTracks(stream) {
    if (stream) stream.getTracks().forEach((track) => track.stop());
  }

  function microphoneMessage(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") return MESSAGES.denied;
    if (name === "NotFoundError" || name === "OverconstrainedError") return MESSAGES.noMicrophone;
    return MESSAGES.microphoneFailed;
  }

  async function fetchJson(url, options) {
    const response = await fetch(url, {
      ...options,
      headers: { "Content-Type": "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    if (!response.ok) {
      const error = new Error(`HTTP ${response.status}`);
      error.busy = response.status === 503;
      throw error;
    }
    return response.json();
  }

  callButton.addEventListener("click", startCall);
  hangupButton.addEventListener("click", () => {
    if (current) endCall(current, MESSAGES.ended);
  });
  // Leaving the page hangs up, so the clinic's line is freed at once.
  window.addEventListener("pagehide", () => {
    if (current) endCall(current, MESSAGES.ended);
  });
  setButtons(false);
  show(MESSAGES.ready);
})();
