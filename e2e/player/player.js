// Page side of the player test: plays a livegrid stream with a real MSE
// player (hls.js, dash.js or mpegts.js) and reports what the browser
// decoded. run.mjs calls window.playerTest(options) and prints the result.
'use strict';

const LIBS = {
  hls: 'node_modules/hls.js/dist/hls.min.js',
  dash: 'node_modules/dashjs/dist/modern/umd/dash.all.min.js',
  flv: 'node_modules/mpegts.js/dist/mpegts.js',
};

// What MediaSource is asked: H.264 High (livegrid's renditions) and
// Baseline, AAC-LC, and the pair in one buffer.
const CODECS = [
  'video/mp4; codecs="avc1.64001f"',
  'video/mp4; codecs="avc1.42c01e"',
  'audio/mp4; codecs="mp4a.40.2"',
  'video/mp4; codecs="avc1.64001f, mp4a.40.2"',
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const loaded = new Map();

// loadScript loads a player library once per page.
function loadScript(src) {
  if (!loaded.has(src)) {
    loaded.set(src, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(s);
    }));
  }
  return loaded.get(src);
}

// freshVideo replaces the page's <video> with a new one, so each run
// starts from an element no earlier player touched.
function freshVideo() {
  const old = document.getElementById('video');
  const video = old.cloneNode(false);
  old.replaceWith(video);
  return video;
}

// until polls cond every 100 ms; it gives up after timeoutMs, or at once
// when the player has reported a fatal error.
async function until(what, timeoutMs, cond, state) {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (state.fatal) throw new Error(`waiting for ${what}: ${state.fatal}`);
    if (performance.now() > end) throw new Error(`no ${what} in ${Math.round(timeoutMs / 1000)} s`);
    await sleep(100);
  }
}

const round = (x) => Math.round(x * 1000) / 1000;

function ranges(tr) {
  const out = [];
  for (let i = 0; i < tr.length; i++) out.push([round(tr.start(i)), round(tr.end(i))]);
  return out;
}

// snapshot is the element's state: the media clock, the decoder's frame
// counters and what is buffered.
function snapshot(video) {
  const q = video.getVideoPlaybackQuality();
  return {
    wall: round(performance.now() / 1000),
    currentTime: round(video.currentTime),
    frames: q.totalVideoFrames,
    dropped: q.droppedVideoFrames,
    buffered: ranges(video.buffered),
    readyState: video.readyState,
    paused: video.paused,
    playbackRate: video.playbackRate,
    width: video.videoWidth,
    height: video.videoHeight,
  };
}

// frameTracker follows presented frames with requestVideoFrameCallback: a
// frame shown twice (same mediaTime), a step back, or a step shorter than
// half a frame would be a duplicated or misplaced frame at a boundary.
// Steps longer than a frame are callbacks the page missed, not media.
function frameTracker(video, fps) {
  const t = { running: false, callbacks: 0, repeats: 0, backsteps: 0, shortSteps: 0, missed: 0,
    minStep: null, maxStep: null, first: null, last: null, presented0: null, presented1: null };
  const onFrame = (_now, md) => {
    if (!t.running) return;
    t.callbacks++;
    if (t.last !== null) {
      const d = md.mediaTime - t.last;
      if (d === 0) t.repeats++;
      else if (d < 0) t.backsteps++;
      else {
        if (d < 0.5 / fps) t.shortSteps++;
        if (d > 1.5 / fps) t.missed += Math.round(d * fps) - 1;
        t.minStep = t.minStep === null ? d : Math.min(t.minStep, d);
        t.maxStep = t.maxStep === null ? d : Math.max(t.maxStep, d);
      }
    } else {
      t.first = md.mediaTime;
      t.presented0 = md.presentedFrames;
    }
    t.last = md.mediaTime;
    t.presented1 = md.presentedFrames;
    video.requestVideoFrameCallback(onFrame);
  };
  return {
    start() {
      if (!('requestVideoFrameCallback' in video)) return;
      t.running = true;
      video.requestVideoFrameCallback(onFrame);
    },
    stop() {
      t.running = false;
      return {
        supported: 'requestVideoFrameCallback' in video,
        callbacks: t.callbacks,
        presentedFrames: t.presented1 === null ? null : t.presented1 - t.presented0,
        mediaFrom: t.first === null ? null : round(t.first),
        mediaTo: t.last === null ? null : round(t.last),
        repeats: t.repeats,
        backsteps: t.backsteps,
        shortSteps: t.shortSteps,
        missedCallbacks: t.missed,
        minStep: t.minStep === null ? null : round(t.minStep),
        maxStep: t.maxStep === null ? null : round(t.maxStep),
      };
    },
  };
}

// cycleRenditions forces each rendition in turn, starting with one that
// is not playing, and waits until it is rendered and plays on: its
// fragment buffered, the picture at its height, and one more second of
// media. Each switch lands at a segment boundary, so the buffer stays one
// range only if every rendition's segments start at the same times. A
// failure is kept on that rendition's entry.
async function cycleRenditions(video, renditions, current, force, state, timeoutMs) {
  const out = [];
  const n = renditions.length;
  for (let k = 1; k <= n; k++) {
    const i = (Math.max(current, 0) + k) % n;
    const r = renditions[i];
    const entry = { index: i, name: r.name, height: r.height };
    const t0 = performance.now();
    const probe = force(i);
    try {
      await until(`switch to ${r.name || i}`, timeoutMs, () => probe.switched() && probe.buffered() !== null, state);
      entry.switchMs = Math.round(performance.now() - t0);
      entry.fragment = probe.buffered();
      await until(`picture of ${r.name || i}`, timeoutMs, () => video.videoHeight === r.height, state);
      const ct = video.currentTime;
      await until(`playback on ${r.name || i}`, timeoutMs, () => video.currentTime >= ct + 1, state);
      entry.ok = true;
    } catch (e) {
      entry.ok = false;
      entry.error = String(e.message || e);
    } finally {
      probe.done();
    }
    entry.video = [video.videoWidth, video.videoHeight];
    entry.currentTime = round(video.currentTime);
    entry.buffered = ranges(video.buffered);
    out.push(entry);
    if (state.fatal) break;
  }
  return out;
}

async function startHls(video, url, state) {
  await loadScript(LIBS.hls);
  const Hls = window.Hls;
  if (!Hls.isSupported()) throw new Error('hls.js: no MediaSource with H.264');
  const hls = new Hls({ debug: false, lowLatencyMode: false });
  hls.on(Hls.Events.ERROR, (_ev, d) => {
    const reason = d.reason || (d.error && d.error.message) || '';
    const where = (d.frag && d.frag.url) || (d.context && d.context.url) || '';
    state.errors.push({ type: d.type, details: d.details, fatal: d.fatal, reason, url: where });
    if (d.fatal) state.fatal = `hls.js fatal ${d.type} ${d.details} ${reason} ${where}`.trim();
  });
  let fragChanges = 0;
  hls.on(Hls.Events.FRAG_CHANGED, () => fragChanges++);
  // The video sample times hls.js parsed from each fragment's moof, to see
  // whether consecutive segments overlap (a frame twice) or leave a gap.
  const fragments = [];
  hls.on(Hls.Events.FRAG_BUFFERED, (_ev, d) => {
    const v = d.frag.elementaryStreams && d.frag.elementaryStreams.video;
    if (d.frag.type !== 'main' || !v || fragments.length >= 200) return;
    fragments.push({ sn: d.frag.sn, level: d.frag.level, startPTS: round(v.startPTS), endPTS: round(v.endPTS),
      startDTS: round(v.startDTS), endDTS: round(v.endDTS) });
  });
  // joins pairs every buffered fragment with each buffered fragment that
  // follows it (next sn, any level): 0 s gaps mean the renditions' segments
  // join exactly, whichever rendition comes next.
  const joins = () => {
    const out = [];
    const seen = new Set();
    for (const f of fragments) {
      for (const g of fragments) {
        const key = `${f.level}:${f.sn}>${g.level}`;
        if (g.sn !== f.sn + 1 || seen.has(key)) continue;
        seen.add(key);
        out.push({ sn: f.sn, levels: [f.level, g.level], ptsGap: round(g.startPTS - f.endPTS), dtsGap: round(g.startDTS - f.endDTS) });
      }
    }
    return out;
  };
  let parsed = false;
  hls.on(Hls.Events.MANIFEST_PARSED, () => { parsed = true; video.play().catch(() => {}); });
  hls.loadSource(url);
  hls.attachMedia(video);
  await until('master playlist', 20000, () => parsed, state);
  const renditions = () => hls.levels.map((l, i) => ({ index: i, name: l.name, width: l.width, height: l.height,
    bitrate: l.bitrate, codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(',') }));
  return {
    name: 'hls.js',
    version: Hls.version,
    boundaries: () => fragChanges,
    info: () => ({ renditions: renditions(), playing: hls.currentLevel, fragments: fragments.slice(), joins: joins() }),
    cycle: (timeoutMs) => cycleRenditions(video, renditions(), hls.currentLevel, (i) => {
      let switched = false;
      let frag = null;
      const onSwitched = (_ev, d) => { if (d.level === i) switched = true; };
      const onBuffered = (_ev, d) => {
        if (frag === null && d.frag.type === 'main' && d.frag.level === i) frag = d.frag.sn;
      };
      hls.on(Hls.Events.LEVEL_SWITCHED, onSwitched);
      hls.on(Hls.Events.FRAG_BUFFERED, onBuffered);
      // A smooth switch, as ABR does: the next fragment comes from level i
      // and is appended after the last one of the level playing. (Setting
      // currentLevel flushes the whole buffer, which proves nothing about
      // alignment and, from a position late in a 6-segment live window,
      // makes hls.js jump to the live edge.)
      hls.nextLevel = i;
      return {
        switched: () => switched,
        buffered: () => frag,
        done: () => { hls.off(Hls.Events.LEVEL_SWITCHED, onSwitched); hls.off(Hls.Events.FRAG_BUFFERED, onBuffered); },
      };
    }, state, timeoutMs),
    destroy: () => hls.destroy(),
  };
}

async function startDash(video, url, state) {
  await loadScript(LIBS.dash);
  const dashjs = window.dashjs;
  const player = dashjs.MediaPlayer().create();
  const E = dashjs.MediaPlayer.events;
  player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
  player.on(E.ERROR, (e) => {
    const err = e.error || e;
    state.errors.push({ code: err.code, message: err.message, fatal: true });
    state.fatal = `dash.js error ${err.code} ${err.message}`;
  });
  player.on(E.PLAYBACK_ERROR, (e) => {
    state.errors.push({ event: 'playbackError', message: String(e.error && (e.error.message || e.error)) });
  });
  let ready = false;
  player.on(E.STREAM_INITIALIZED, () => { ready = true; });
  player.initialize(video, url, true);
  await until('MPD', 20000, () => ready, state);
  const renditions = () => player.getRepresentationsByType('video').map((r, i) => ({ index: i, name: r.id,
    width: r.width, height: r.height, bitrate: r.bandwidth, codecs: r.codecs }));
  const playing = () => {
    const cur = player.getCurrentRepresentationForType('video');
    return cur ? renditions().findIndex((r) => r.name === cur.id) : -1;
  };
  return {
    name: 'dash.js',
    version: player.getVersion(),
    info: () => ({ renditions: renditions(), playing: playing(), live: player.isDynamic() }),
    cycle: (timeoutMs) => {
      player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
      const list = renditions();
      return cycleRenditions(video, list, playing(), (i) => {
        let switched = false;
        const onRendered = (e) => {
          if (e.mediaType === 'video' && e.newRepresentation && e.newRepresentation.id === list[i].name) switched = true;
        };
        player.on(E.QUALITY_CHANGE_RENDERED, onRendered);
        player.setRepresentationForTypeByIndex('video', i, false); // from the next segment on
        return {
          switched: () => switched,
          buffered: () => (switched ? list[i].name : null),
          done: () => player.off(E.QUALITY_CHANGE_RENDERED, onRendered),
        };
      }, state, timeoutMs);
    },
    destroy: () => player.destroy(),
  };
}

async function startFlv(video, url, state) {
  await loadScript(LIBS.flv);
  const mpegts = window.mpegts;
  mpegts.LoggingControl.enableVerbose = false;
  mpegts.LoggingControl.enableDebug = false;
  mpegts.LoggingControl.enableInfo = false;
  const features = mpegts.getFeatureList();
  if (!features.mseLivePlayback) throw new Error('mpegts.js: no MSE live playback in this browser');
  const player = mpegts.createPlayer({ type: 'flv', isLive: true, url, cors: true },
    { enableWorker: false, lazyLoad: false, liveBufferLatencyChasing: false });
  player.on(mpegts.Events.ERROR, (type, details, info) => {
    const msg = info && (info.msg || info.message || info.code) ? `${info.code || ''} ${info.msg || info.message || ''}`.trim() : '';
    state.errors.push({ type, details, info: msg, fatal: true });
    state.fatal = `mpegts.js ${type} ${details} ${msg}`.trim();
  });
  let mediaInfo = null;
  player.on(mpegts.Events.MEDIA_INFO, (mi) => {
    mediaInfo = { mimeType: mi.mimeType, hasAudio: mi.hasAudio, hasVideo: mi.hasVideo, width: mi.width,
      height: mi.height, fps: mi.fps, videoCodec: mi.videoCodec, audioCodec: mi.audioCodec };
  });
  player.attachMediaElement(video);
  player.load();
  const p = player.play();
  if (p && p.catch) p.catch(() => {});
  return {
    name: 'mpegts.js',
    version: mpegts.version,
    info: () => ({ mediaInfo, features: { mseLivePlayback: features.mseLivePlayback, networkStreamIO: features.networkStreamIO } }),
    destroy: () => {
      player.pause();
      player.unload();
      player.detachMediaElement();
      player.destroy();
    },
  };
}

const START = { hls: startHls, dash: startDash, flv: startFlv };

// playerTest plays options.url in options.mode (hls, dash, flv) until
// playSeconds of media went by, measures the decoder across that
// stretch, then (cycle) forces each rendition in turn. It always
// resolves: a failure is in result.error. Runs may follow one another in
// one page; each gets a new <video> element.
window.playerTest = async function playerTest(options) {
  const { mode, url, fps = 30, playSeconds = 6, timeoutMs = 30000, cycle = true } = options;
  const video = freshVideo();
  const state = { errors: [], fatal: null };
  const result = { mode, url, userAgent: navigator.userAgent, mse: {}, player: null, version: null, error: null };
  for (const c of CODECS) result.mse[c] = !!window.MediaSource && MediaSource.isTypeSupported(c);
  let mediaError = null;
  video.addEventListener('error', () => {
    const e = video.error;
    mediaError = { code: e ? e.code : 0, message: e ? e.message : '' };
    state.fatal = `MEDIA_ERR ${mediaError.code} ${mediaError.message}`;
  });
  let stalls = 0;
  video.addEventListener('waiting', () => stalls++);
  const t0 = performance.now();
  let p = null;
  try {
    if (!START[mode]) throw new Error(`unknown mode ${mode}`);
    p = await START[mode](video, url, state);
    result.player = p.name;
    result.version = p.version;
    await until('playback start', timeoutMs, () => video.currentTime > 0 && !video.paused && video.readyState >= 2, state);
    result.startupMs = Math.round(performance.now() - t0);
    await sleep(500);
    const tracker = frameTracker(video, fps);
    tracker.start();
    const b0 = p.boundaries ? p.boundaries() : null;
    const stalls0 = stalls;
    const from = snapshot(video);
    await until(`${playSeconds} s of media`, timeoutMs + playSeconds * 3000,
      () => video.currentTime >= from.currentTime + playSeconds, state);
    const to = snapshot(video);
    const mediaSeconds = to.currentTime - from.currentTime;
    const decoded = to.frames - from.frames;
    result.steady = {
      from, to,
      mediaSeconds: round(mediaSeconds),
      wallSeconds: round(to.wall - from.wall),
      framesDecoded: decoded,
      framesDropped: to.dropped - from.dropped,
      expectedFrames: round(mediaSeconds * fps),
      frameRatio: round(decoded / (mediaSeconds * fps)),
      segmentBoundaries: b0 === null ? null : p.boundaries() - b0,
      stalls: stalls - stalls0,
      presented: tracker.stop(),
    };
    if (cycle && p.cycle) result.switches = await p.cycle(timeoutMs);
    result.info = p.info();
  } catch (e) {
    result.error = String((e && e.message) || e);
    if (p && !result.info) {
      try { result.info = p.info(); } catch (_) { /* reported as error already */ }
    }
  }
  result.final = snapshot(video);
  result.elapsedMs = Math.round(performance.now() - t0);
  result.errors = state.errors;
  result.fatal = state.fatal;
  result.mediaError = mediaError;
  try { if (p) p.destroy(); } catch (_) { /* the result is what matters */ }
  video.removeAttribute('src');
  video.load();
  return result;
};
