// A small Deep Zoom viewer for the pages `nuwa-inf view` writes (see nuwa_inf/view/page.py for why
// it is ours). It reads the tile source from <script id="tile-source" type="application/json">
// and draws tiles on a <canvas>; no XHR or fetch, so it works from file:// and any static server.
//
// Coordinates: `view.x`, `view.y` are the image pixel at the centre of the canvas and `view.zoom`
// is device pixels per image pixel (zoom 1 = 1:1). Level L of the pyramid is the image shrunk by
// 2^(maxLevel - L); level pixel i covers image pixels [i·2^k, (i+1)·2^k), k = maxLevel - L.
// For tests: window.viewerReady is true once every tile the current view needs has arrived, and
// window.viewer exposes the state and a few actions.
(function () {
  "use strict";

  const src = JSON.parse(document.getElementById("tile-source").textContent);
  const W = src.width, H = src.height, TS = src.tileSize, OV = src.overlap, MAX = src.maxLevel;
  const canvas = document.getElementById("view"), ctx = canvas.getContext("2d");
  const mini = document.getElementById("minimap"), mctx = mini.getContext("2d");
  const info = document.getElementById("info");
  const MAX_ZOOM = 32;          // device px per image px
  const ZOOM_STEP = Math.SQRT2; // one key press or button click
  const CACHE_LIMIT = 600;      // tiles kept in memory beyond those on screen
  const MINI_MAX_W = 320, MINI_MAX_H = 160, MINI_MIN_H = 8; // css px

  // ------------------------------------------------------------------ pyramid geometry
  function shrink(L) { return Math.pow(2, MAX - L); } // image px per level px
  function levelSize(L) { const f = shrink(L); return [Math.ceil(W / f), Math.ceil(H / f)]; }
  function levelGrid(L) { const s = levelSize(L); return [Math.ceil(s[0] / TS), Math.ceil(s[1] / TS)]; }
  // the coarsest level that is still sharp at this zoom (never upsampled unless at full size)
  function levelFor(zoom) {
    return Math.max(0, Math.min(MAX, MAX + Math.ceil(Math.log2(zoom) - 1e-9)));
  }
  // the base level: the smallest with its longer side >= 1024 px; always loaded, for the
  // overview and as the background while finer tiles arrive
  let BASE = MAX;
  while (BASE > 0 && Math.max.apply(null, levelSize(BASE - 1)) >= 1024) BASE--;

  // ------------------------------------------------------------------ tiles
  const tiles = new Map(); // "L/C/R" -> {img, state: "loading" | "ok" | "failed", used, level}
  let frame = 0;

  function getTile(L, c, r, request) {
    const key = L + "/" + c + "/" + r;
    let t = tiles.get(key);
    if (!t && request) {
      t = { img: new Image(), state: "loading", used: frame, level: L };
      t.img.onload = function () { t.state = "ok"; schedule(); };
      t.img.onerror = function () { t.state = "failed"; schedule(); };
      t.img.src = src.url + L + "/" + c + "_" + r + "." + src.extension;
      tiles.set(key, t);
    }
    if (t) t.used = frame;
    return t;
  }

  // image-space rectangle of tile (c, r) of level L, overlap included: [x, y, w, h]
  function tileRect(L, c, r, img) {
    const f = shrink(L);
    const lx = c * TS - (c > 0 ? OV : 0), ly = r * TS - (r > 0 ? OV : 0);
    return [lx * f, ly * f, img.naturalWidth * f, img.naturalHeight * f];
  }

  // call fn(c, r) for every tile of level L that meets the image rectangle [x0, x1) x [y0, y1)
  function forTilesIn(L, x0, y0, x1, y1, fn) {
    const f = shrink(L) * TS, grid = levelGrid(L);
    const c0 = Math.max(0, Math.floor(x0 / f)), c1 = Math.min(grid[0] - 1, Math.floor((x1 - 1e-6) / f));
    const r0 = Math.max(0, Math.floor(y0 / f)), r1 = Math.min(grid[1] - 1, Math.floor((y1 - 1e-6) / f));
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) fn(c, r);
  }

  function evict() {
    if (tiles.size <= CACHE_LIMIT) return;
    const old = [];
    tiles.forEach(function (t, key) { if (t.level !== BASE && t.used < frame) old.push([t.used, key]); });
    old.sort(function (a, b) { return a[0] - b[0]; });
    for (let i = 0; i < old.length && tiles.size > CACHE_LIMIT; i++) {
      const t = tiles.get(old[i][1]);
      t.img.onload = t.img.onerror = null;
      t.img.src = ""; // stops a load still in flight
      tiles.delete(old[i][1]);
    }
  }

  // ------------------------------------------------------------------ view state
  const view = { x: W / 2, y: H / 2, zoom: 1 };
  let dpr = window.devicePixelRatio || 1;

  function fitZoom() { return Math.min(canvas.width / W, canvas.height / H); }
  function minZoom() { return Math.min(fitZoom(), 1) / 2; }
  function clampView() {
    view.zoom = Math.max(minZoom(), Math.min(MAX_ZOOM, view.zoom));
    view.x = Math.max(0, Math.min(W, view.x));
    view.y = Math.max(0, Math.min(H, view.y));
  }
  // the image rectangle the canvas shows: [x0, y0, x1, y1]
  function visibleRect() {
    const hw = canvas.width / 2 / view.zoom, hh = canvas.height / 2 / view.zoom;
    return [view.x - hw, view.y - hh, view.x + hw, view.y + hh];
  }
  function screenToImage(px, py) { // device px on the canvas -> image px
    return [view.x + (px - canvas.width / 2) / view.zoom, view.y + (py - canvas.height / 2) / view.zoom];
  }
  // zoom to `zoom`, keeping the image point under device pixel (px, py) where it is
  function zoomAt(zoom, px, py) {
    const p = screenToImage(px, py);
    view.zoom = Math.max(minZoom(), Math.min(MAX_ZOOM, zoom));
    view.x = p[0] - (px - canvas.width / 2) / view.zoom;
    view.y = p[1] - (py - canvas.height / 2) / view.zoom;
    clampView();
    schedule();
  }
  function zoomBy(factor) { zoomAt(view.zoom * factor, canvas.width / 2, canvas.height / 2); }
  function fit() { view.x = W / 2; view.y = H / 2; view.zoom = fitZoom(); clampView(); schedule(); }
  function oneToOne() { view.zoom = 1; clampView(); schedule(); }
  function panBy(dx, dy) { view.x += dx / view.zoom; view.y += dy / view.zoom; clampView(); schedule(); }
  function moveTo(x, y) { view.x = x; view.y = y; clampView(); schedule(); }

  // ------------------------------------------------------------------ drawing
  let scheduled = false;
  window.viewerReady = false;

  function schedule() {
    window.viewerReady = false;
    if (!scheduled) { scheduled = true; requestAnimationFrame(render); }
  }

  function drawTiles(context, L, rect, toScreen, request) {
    let pending = 0;
    forTilesIn(L, rect[0], rect[1], rect[2], rect[3], function (c, r) {
      const t = getTile(L, c, r, request);
      if (!t) return;
      if (t.state === "ok") {
        const box = tileRect(L, c, r, t.img), a = toScreen(box[0], box[1]), b = toScreen(box[0] + box[2], box[1] + box[3]);
        context.drawImage(t.img, a[0], a[1], b[0] - a[0], b[1] - a[1]);
      } else if (t.state === "loading") {
        pending++;
      }
    });
    return pending;
  }

  function render() {
    scheduled = false;
    frame++;
    ctx.fillStyle = "#202124";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = view.zoom < 2; // from 2:1 on, show image pixels as squares
    const rect = visibleRect(), target = levelFor(view.zoom);
    const toScreen = function (x, y) {
      return [(x - view.x) * view.zoom + canvas.width / 2, (y - view.y) * view.zoom + canvas.height / 2];
    };
    // coarse to fine, each drawn over the one before: the base and target levels are requested,
    // the levels between are drawn where they are already loaded
    let pending = 0;
    for (let L = Math.min(BASE, target); L <= target; L++) {
      const needed = drawTiles(ctx, L, rect, toScreen, L === BASE || L === target);
      if (L === target) pending += needed;
    }
    pending += drawMinimap();
    viewer.tilesPending = pending;
    info.textContent = Math.round(view.zoom * 1000) / 10 + "% · x " + Math.round(view.x) + " y " +
      Math.round(view.y) + " · " + W + "×" + H;
    writeHash();
    evict();
    window.viewerReady = pending === 0;
  }

  // ------------------------------------------------------------------ overview
  let miniScaleX = 1, miniScaleY = 1;

  function sizeMinimap() {
    let w = Math.min(MINI_MAX_W, canvas.clientWidth * 0.45), h = w * H / W;
    if (h > MINI_MAX_H) { h = MINI_MAX_H; w = h * W / H; }
    h = Math.max(h, MINI_MIN_H);
    mini.style.width = w + "px";
    mini.style.height = h + "px";
    mini.width = Math.round(w * dpr);
    mini.height = Math.round(h * dpr);
    miniScaleX = mini.width / W;
    miniScaleY = mini.height / H;
  }

  function drawMinimap() {
    mctx.fillStyle = "#000";
    mctx.fillRect(0, 0, mini.width, mini.height);
    mctx.imageSmoothingEnabled = true;
    const pending = drawTiles(mctx, BASE, [0, 0, W, H], function (x, y) { return [x * miniScaleX, y * miniScaleY]; }, true);
    const r = visibleRect();
    const x0 = Math.max(0, r[0]) * miniScaleX, y0 = Math.max(0, r[1]) * miniScaleY;
    const x1 = Math.min(W, r[2]) * miniScaleX, y1 = Math.min(H, r[3]) * miniScaleY;
    const rw = Math.max(2, x1 - x0 - 1), rh = Math.max(2, y1 - y0 - 1);
    mctx.lineWidth = 3 * dpr; // a dark edge around the red line: visible on any image
    mctx.strokeStyle = "rgba(0, 0, 0, 0.7)";
    mctx.strokeRect(x0 + 0.5, y0 + 0.5, rw, rh);
    mctx.lineWidth = Math.max(1, dpr);
    mctx.strokeStyle = "#ff3b30";
    mctx.strokeRect(x0 + 0.5, y0 + 0.5, rw, rh);
    return pending;
  }

  function minimapMove(e) {
    const box = mini.getBoundingClientRect();
    moveTo((e.clientX - box.left) * dpr / miniScaleX, (e.clientY - box.top) * dpr / miniScaleY);
  }

  // ------------------------------------------------------------------ the URL hash: #x=..&y=..&zoom=..
  let lastHash = "", hashTimer = 0;

  function hashText() {
    return "x=" + Math.round(view.x) + "&y=" + Math.round(view.y) + "&zoom=" + Number(view.zoom.toPrecision(4));
  }
  function writeHash() {
    const text = hashText();
    if (text === lastHash) return;
    lastHash = text;
    clearTimeout(hashTimer);
    hashTimer = setTimeout(function () {
      try {
        history.replaceState(null, "", "#" + text);
      } catch (err) { // some browsers refuse history changes on file:// pages
        location.replace("#" + text);
      }
    }, 200);
  }
  function readHash() { // true if the hash named a place
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const x = parseFloat(params.get("x")), y = parseFloat(params.get("y")), z = parseFloat(params.get("zoom"));
    if (!isFinite(x) && !isFinite(y) && !isFinite(z)) return false;
    view.zoom = isFinite(z) && z > 0 ? z : fitZoom();
    view.x = isFinite(x) ? x : W / 2;
    view.y = isFinite(y) ? y : H / 2;
    clampView();
    lastHash = location.hash.replace(/^#/, "");
    schedule();
    return true;
  }

  // ------------------------------------------------------------------ input
  function resize() {
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr));
    sizeMinimap();
    clampView();
    schedule();
  }

  let drag = null; // {x, y} of the last pointer position while dragging, css px
  canvas.addEventListener("pointerdown", function (e) {
    canvas.focus();
    canvas.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY };
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drag) return;
    panBy(-(e.clientX - drag.x) * dpr, -(e.clientY - drag.y) * dpr);
    drag = { x: e.clientX, y: e.clientY };
  });
  function endDrag() { drag = null; canvas.classList.remove("dragging"); }
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    const lines = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1; // to px
    const dy = Math.max(-400, Math.min(400, e.deltaY * lines));
    const box = canvas.getBoundingClientRect();
    zoomAt(view.zoom * Math.exp(-dy * 0.002), (e.clientX - box.left) * dpr, (e.clientY - box.top) * dpr);
  }, { passive: false });
  canvas.addEventListener("dblclick", function (e) {
    const box = canvas.getBoundingClientRect();
    zoomAt(view.zoom * (e.shiftKey ? 0.5 : 2), (e.clientX - box.left) * dpr, (e.clientY - box.top) * dpr);
  });
  window.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return; // leave the browser's own shortcuts alone
    const step = Math.min(canvas.width, canvas.height) / 4;
    const actions = {
      "+": function () { zoomBy(ZOOM_STEP); }, "=": function () { zoomBy(ZOOM_STEP); },
      "-": function () { zoomBy(1 / ZOOM_STEP); }, "_": function () { zoomBy(1 / ZOOM_STEP); },
      "0": fit, "1": oneToOne,
      "ArrowLeft": function () { panBy(-step, 0); }, "ArrowRight": function () { panBy(step, 0); },
      "ArrowUp": function () { panBy(0, -step); }, "ArrowDown": function () { panBy(0, step); },
      "Home": function () { moveTo(0, view.y); }, "End": function () { moveTo(W, view.y); },
    };
    if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
  });
  let miniDrag = false;
  mini.addEventListener("pointerdown", function (e) {
    mini.setPointerCapture(e.pointerId); miniDrag = true; minimapMove(e);
  });
  mini.addEventListener("pointermove", function (e) { if (miniDrag) minimapMove(e); });
  mini.addEventListener("pointerup", function () { miniDrag = false; });
  mini.addEventListener("pointercancel", function () { miniDrag = false; });
  document.getElementById("zoom-in").addEventListener("click", function () { zoomBy(ZOOM_STEP); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomBy(1 / ZOOM_STEP); });
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("one-to-one").addEventListener("click", oneToOne);
  window.addEventListener("resize", resize);
  window.addEventListener("hashchange", function () {
    if (location.hash.replace(/^#/, "") !== lastHash) readHash();
  });

  const viewer = {
    source: src, baseLevel: BASE, tilesPending: 0,
    state: function () {
      return { x: view.x, y: view.y, zoom: view.zoom, level: levelFor(view.zoom), fitZoom: fitZoom() };
    },
    screenToImage: screenToImage, zoomAt: zoomAt, moveTo: moveTo, fit: fit, oneToOne: oneToOne,
  };
  window.viewer = viewer;

  resize();
  if (!readHash()) fit();
  canvas.focus();
})();
