// The board canvas: pan/zoom, zones and worktree cards, all drawn in the browser from props.
// Python owns the data (props `zones`, `cards`) and sends small patches through `apply(event)`;
// the browser owns the viewport and in-flight drags, and emits only finished gestures.
const MIN_ZOOM = 0.1;
const MAX_ZOOM = 4;
const DRAG_THRESHOLD = 4;
const POINTER_INTERVAL_MS = 100;
const ARROW_STEP = 10; // px a card moves per arrow key (Shift: 5 steps)
const KEY_MOVE_SETTLE_MS = 250; // arrow keys are one gesture until they pause: then it is dropped, like a drag

// Whether a key event is someone typing (in an input, a textarea, a select, an editable element): shortcuts leave it.
function typing(event) {
  const t = event.target;
  return !!t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}

// Paces calls to `send`: the first call of a quiet window goes at once, later ones at most one per `interval` ms, and
// the latest call is always sent, at the end of its window. `paced(...).now(...)` sends at once and drops the waiting
// call (a drag's end). `later` is injectable for tests (tests/test_browser_presence.py drives it with a fake clock).
export function paced(send, interval, later = (fn, ms) => setTimeout(fn, ms)) {
  let pending = null; // the latest call not sent yet
  let open = false; // a window is open: calls wait for its end
  const close = () => {
    if (pending === null) { open = false; return; }
    const args = pending;
    pending = null;
    send(...args);
    later(close, interval);
  };
  const call = (...args) => {
    if (open) { pending = args; return; }
    open = true;
    send(...args);
    later(close, interval);
  };
  call.now = (...args) => { pending = null; send(...args); };
  return call;
}

export default {
  template: `
    <div class="agor-canvas" ref="root" :style="gridStyle"
         :class="{'agor-commenting': tool === 'comment', 'agor-space-pan': spacePan}" role="application"
         aria-label="Board canvas: Tab to a card, arrow keys move it, Enter opens it; ? lists the shortcuts"
         @pointerdown="onBackgroundDown" @pointermove="onPointerMove" @pointerup="onPointerUp"
         @pointercancel="onPointerUp" @wheel.prevent="onWheel" @agor-peers="onPeers">
      <div class="agor-world" :style="worldStyle">
        <div v-for="z in zoneList" :key="z.id" class="agor-zone" :data-zone-id="z.id" :style="zoneStyle(z)"
             :class="{locked: z.locked, 'agor-flash': flash === z.id}">
          <div class="agor-zone-header" :style="{color: z.border}" @pointerdown.stop="onZoneDown($event, z, 'move')">
            <span class="agor-zone-label">{{ z.label }}</span>
            <i v-if="z.trigger" class="material-icons agor-zone-trigger" role="img" aria-label="Has a trigger" title="This zone has a trigger">bolt</i>
            <i v-if="z.locked" class="material-icons" role="img" aria-label="Locked" title="Locked">lock</i>
          </div>
          <div v-if="!readonly && !z.locked" class="agor-zone-resize" title="Resize"
               @pointerdown.stop="onZoneDown($event, z, 'resize')"></div>
        </div>
        <div v-for="c in cardList" :key="c.id" class="agor-card" :data-card-id="c.id" :data-zone-id="c.zone || ''"
             :style="cardStyle(c)"
             :class="{attention: attention.includes(c.id), dragging: gesture && gesture.id === c.id, 'agor-flash': flash === c.id}"
             tabindex="0" role="button" @keydown="onCardKey($event, c)" @blur="dropKeyMove"
             @pointerdown.stop="onCardDown($event, c)">
          <div v-if="attention.includes(c.id) && reasons[c.id]" class="agor-card-reason" :title="reasons[c.id]">{{ reasons[c.id] }}</div>
          <div class="agor-card-name">{{ c.name }}</div>
          <div class="agor-card-meta"><i class="material-icons agor-branch-icon" aria-hidden="true">call_split</i><span class="agor-branch">{{ c.branch }}</span> · {{ c.repo }}</div>
          <div class="agor-card-badges">
            <span v-for="s in c.sessions" :key="s.id" class="agor-chip agor-session-chip" :class="'status-' + s.status"
                  :data-session-id="s.id" :title="s.origin ? 'From ' + s.origin : null"
                  @pointerdown.stop @click.stop="$emit('session_click', { id: s.id })"><i v-if="s.origin" class="material-icons agor-chip-origin" aria-hidden="true">forum</i><span v-if="s.origin" class="agor-sr-only">From {{ s.origin }}: </span>{{ s.label }}</span>
            <span v-if="c.comments" class="agor-chip agor-comments-chip" :title="c.comments + ' open threads'"><i class="material-icons" aria-hidden="true">chat_bubble_outline</i><span class="agor-count">{{ c.comments }}</span></span>
          </div>
        </div>
        <div v-for="p in pinList" :key="'pin-' + p.id" class="agor-pin" :data-pin-id="p.id" :style="pinStyle(p)"
             :class="{'agor-flash': flash === p.id}" :title="p.author + ': ' + p.preview"
             @pointerdown.stop @click.stop="$emit('pin_click', { id: p.id })">
          <span class="agor-pin-face" :style="{ background: p.color }">{{ p.initials }}</span>
          <span class="agor-pin-count">{{ p.count }}</span>
        </div>
        <slot></slot>
      </div>
      <div class="agor-controls" role="toolbar" aria-label="Zoom" @pointerdown.stop>
        <button aria-label="Zoom out" title="Zoom out (Ctrl -)" @click="zoomBy(1 / 1.2)"><i class="material-icons" aria-hidden="true">remove</i></button>
        <button class="agor-zoom-level" :aria-label="'Zoom ' + Math.round(view.k * 100) + '%: reset to 100%'" title="Reset to 100% (Ctrl 0)" @click="zoomTo(1)">{{ Math.round(view.k * 100) }}%</button>
        <button aria-label="Zoom in" title="Zoom in (Ctrl +)" @click="zoomBy(1.2)"><i class="material-icons" aria-hidden="true">add</i></button>
        <button aria-label="Fit to content" title="Fit to content (Shift 1)" @click="fit()"><i class="material-icons" aria-hidden="true">fit_screen</i></button>
      </div>
    </div>
  `,
  props: {
    zones: Array,
    cards: Array,
    pins: Array,
    readonly: Boolean,
    geometry: Object,
  },
  data() {
    return {
      view: { x: 0, y: 0, k: 1 },
      zoneMap: {},
      cardMap: {},
      gesture: null, // {kind: 'card'|'move'|'resize'|'pan', id, start..., moved}
      pointers: {},
      pinch: null,
      remoteDrags: {}, // card id -> {x, y, by}: someone else is dragging it right now
      following: false,
      hadInput: false,
      pinList: [],
      tool: "select", // or "comment": the next click places a comment
      spacePan: false, // Space is held: a drag anywhere pans
      keyMove: null, // {id, x, y}: a card being moved with the arrow keys, not dropped yet
      flash: null, // id of the card, zone or pin a deep link just focused
      attention: [], // ids of the cards that need this viewer (acknowledgement is per viewer)
      reasons: {}, // card id -> why it needs attention (an agent's request_attention, an approval request)
    };
  },
  computed: {
    zoneList() {
      return Object.values(this.zoneMap);
    },
    cardList() {
      return Object.values(this.cardMap);
    },
    worldStyle() {
      return { transform: `translate(${this.view.x}px, ${this.view.y}px) scale(${this.view.k})`, "--agor-k": this.view.k };
    },
    gridStyle() {
      const size = 24 * this.view.k;
      return { backgroundSize: `${size}px ${size}px`, backgroundPosition: `${this.view.x}px ${this.view.y}px` };
    },
  },
  watch: {
    zones: { handler() { this.load(); } },
    cards: { handler() { this.load(); } },
    pins: { handler() { this.pinList = [...(this.pins || [])]; } },
    view: { handler() { this.$emit("viewport", { ...this.viewCenter(), k: this.view.k }); }, deep: true },
  },
  created() {
    this.sendPointer = paced((report) => this.$emit("pointer", report), POINTER_INTERVAL_MS);
    this.load();
    this.pinList = [...(this.pins || [])];
  },
  mounted() {
    this.$nextTick(() => this.fit());
    this.beat = () => { this.$emit("beat", { hidden: document.hidden, active: this.hadInput }); this.hadInput = false; };
    this.onKey = (e) => this.shortcut(e);
    this.onKeyUp = (e) => { if (e.key === " ") this.spacePan = false; };
    this.beatTimer = setInterval(this.beat, 3000);
    document.addEventListener("visibilitychange", this.beat);
    document.addEventListener("keydown", this.onKey);
    document.addEventListener("keyup", this.onKeyUp);
  },
  unmounted() {
    clearInterval(this.beatTimer);
    document.removeEventListener("visibilitychange", this.beat);
    document.removeEventListener("keydown", this.onKey);
    document.removeEventListener("keyup", this.onKeyUp);
  },
  methods: {
    load() {
      this.zoneMap = Object.fromEntries((this.zones || []).map((z) => [z.id, { ...z }]));
      this.cardMap = Object.fromEntries((this.cards || []).map((c) => [c.id, { ...c }]));
    },
    // ---- patches from the server ------------------------------------------------------------------------------
    apply(event) {
      if (event.type === "zone") this.zoneMap[event.zone.id] = { ...event.zone };
      else if (event.type === "zone_deleted") delete this.zoneMap[event.id];
      else if (event.type === "card") {
        this.cardMap[event.card.id] = { ...event.card };
        delete this.remoteDrags[event.card.id];
      }
      else if (event.type === "card_removed") delete this.cardMap[event.id];
      else if (event.type === "pins") this.pinList = event.pins;
    },
    // ---- geometry ---------------------------------------------------------------------------------------------
    zoneBox(z) {
      const g = this.gesture;
      if (g && g.id === z.id && g.kind === "move") return { ...z, x: g.x, y: g.y };
      if (g && g.id === z.id && g.kind === "resize") return { ...z, w: g.w, h: g.h };
      return z;
    },
    cardPos(c) {
      const g = this.gesture;
      if (g && g.kind === "card" && g.id === c.id) return { x: g.x, y: g.y };
      if (this.keyMove && this.keyMove.id === c.id) return { x: this.keyMove.x, y: this.keyMove.y };
      if (this.remoteDrags[c.id]) return this.remoteDrags[c.id];
      const zone = c.zone && this.zoneMap[c.zone];
      if (!zone) return { x: c.x, y: c.y };
      const box = this.zoneBox(zone);
      return { x: box.x + c.x, y: box.y + c.y };
    },
    zoneStyle(z) {
      const b = this.zoneBox(z);
      return {
        left: `${b.x}px`, top: `${b.y}px`, width: `${b.w}px`, height: `${b.h}px`,
        borderColor: z.border, background: z.background,
      };
    },
    cardStyle(c) {
      const p = this.cardPos(c);
      return { transform: `translate(${p.x}px, ${p.y}px)`, width: `${this.geometry.card_w}px`,
               minHeight: `${this.geometry.card_h}px` };
    },
    pinPos(p) {
      // board pins are absolute; zone and card pins are offsets from their top-left, so they travel with them
      if (p.anchor === "zone") {
        const zone = this.zoneMap[p.target];
        if (!zone) return null;
        const box = this.zoneBox(zone);
        return { x: box.x + p.dx, y: box.y + p.dy };
      }
      if (p.anchor === "card") {
        // on the card's right edge, never over its text; several stack down that edge (30 px apart on screen)
        const card = this.cardMap[p.target];
        if (!card) return null;
        const pos = this.cardPos(card);
        const index = this.pinList.filter((q) => q.anchor === "card" && q.target === p.target).indexOf(p);
        return { x: pos.x + this.geometry.card_w + 4 / this.view.k, y: pos.y + (32 + index * 30) / this.view.k };
      }
      return { x: p.dx, y: p.dy };
    },
    pinStyle(p) {
      const pos = this.pinPos(p);
      if (!pos) return { display: "none" };
      return { transform: `translate(${pos.x}px, ${pos.y}px) scale(${1 / this.view.k}) translateY(-100%)` };
    },
    zoneAt(x, y) {
      // the smallest zone containing the point: the same rule the server applies
      let best = null;
      for (const z of this.zoneList) {
        if (x >= z.x && x <= z.x + z.w && y >= z.y && y <= z.y + z.h && (!best || z.w * z.h < best.w * best.h)) best = z;
      }
      return best;
    },
    toWorld(event) {
      const r = this.$refs.root.getBoundingClientRect();
      return { x: (event.clientX - r.left - this.view.x) / this.view.k, y: (event.clientY - r.top - this.view.y) / this.view.k };
    },
    // ---- keyboard (Figma and Linear habits; the sheet in components/shortcuts.py) --------------------------------
    shortcut(e) {
      this.hadInput = true;
      if (document.querySelector(".q-dialog, .q-menu")) return; // a dialog or menu has the keyboard (Esc closes it)
      if (typing(e)) {
        if (e.key === "Escape") e.target.blur();
        return;
      }
      const mod = e.ctrlKey || e.metaKey;
      if (e.key === "Escape") {
        if (this.tool !== "select") this.tool = "select";
        else if (this.following) this.unfollow();
        else this.$emit("escape", {});
      } else if (mod && (e.key === "+" || e.key === "=")) this.zoomBy(1.2);
      else if (mod && e.key === "-") this.zoomBy(1 / 1.2);
      else if (mod && e.key === "0") this.zoomTo(1);
      else if (mod || e.altKey) return;
      else if (e.code === "Digit1" && e.shiftKey) this.fit();
      else if (e.key === "c" || e.key === "C") { if (this.readonly) return; this.tool = "comment"; }
      else if (e.key === "?") this.$emit("shortcuts", {});
      else if (e.key === " " && !e.target.closest("button, a, [role=button], [role=tab]")) this.spacePan = true;
      else return;
      e.preventDefault();
    },
    onCardKey(e, card) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "Enter") {
        e.preventDefault();
        this.dropKeyMove();
        this.$emit("card_click", { id: card.id });
        return;
      }
      const step = ARROW_STEP * (e.shiftKey ? 5 : 1);
      const delta = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
      if (!delta) return;
      e.preventDefault();
      if (this.readonly) return;
      if (this.keyMove && this.keyMove.id !== card.id) this.dropKeyMove();
      const pos = this.cardPos(card);
      this.keyMove = { id: card.id, x: pos.x + delta[0], y: pos.y + delta[1] };
      clearTimeout(this.keyTimer);
      this.keyTimer = setTimeout(() => this.dropKeyMove(), KEY_MOVE_SETTLE_MS);
    },
    dropKeyMove() {
      // the same way as a drop: the server applies the zone rule and fires a trigger
      clearTimeout(this.keyTimer);
      const g = this.keyMove;
      this.keyMove = null;
      if (!g) return;
      this.settleCard(g);
      this.$emit("card_move", { id: g.id, x: g.x, y: g.y });
    },
    // ---- gestures ---------------------------------------------------------------------------------------------
    onCardDown(event, card) {
      if (event.button !== 0) return;
      if (this.spacePan) return this.onBackgroundDown(event);
      if (this.tool === "comment") return this.commentAt(event, { card: card.id });
      const start = this.toWorld(event);
      const pos = this.cardPos(card);
      this.capture(event);
      this.gesture = { kind: "card", id: card.id, sx: start.x, sy: start.y, ox: pos.x, oy: pos.y, x: pos.x, y: pos.y,
                       moved: false, screen: [event.clientX, event.clientY] };
    },
    onZoneDown(event, zone, kind) {
      if (event.button !== 0) return;
      if (this.spacePan) return this.onBackgroundDown(event);
      if (this.tool === "comment") return this.commentAt(event, { zone: zone.id });
      const start = this.toWorld(event);
      this.capture(event);
      this.gesture = { kind, id: zone.id, sx: start.x, sy: start.y, x: zone.x, y: zone.y, w: zone.w, h: zone.h,
                       ox: kind === "move" ? zone.x : zone.w, oy: kind === "move" ? zone.y : zone.h, moved: false,
                       locked: zone.locked, screen: [event.clientX, event.clientY] };
    },
    onBackgroundDown(event) {
      if (this.tool === "comment" && event.button === 0 && !this.spacePan) {
        const p = this.toWorld(event);
        const zone = this.zoneAt(p.x, p.y);
        return this.commentAt(event, { zone: zone ? zone.id : null });
      }
      this.pointers[event.pointerId] = [event.clientX, event.clientY];
      this.capture(event);
      const ids = Object.keys(this.pointers);
      if (ids.length === 2) {
        const [a, b] = ids.map((id) => this.pointers[id]);
        this.pinch = { dist: Math.hypot(a[0] - b[0], a[1] - b[1]), k: this.view.k };
        this.gesture = null;
        return;
      }
      this.gesture = { kind: "pan", sx: event.clientX, sy: event.clientY, ox: this.view.x, oy: this.view.y, moved: false };
    },
    onPointerMove(event) {
      this.hadInput = true;
      this.reportPointer(event);
      if (this.pointers[event.pointerId]) this.pointers[event.pointerId] = [event.clientX, event.clientY];
      if (this.pinch && Object.keys(this.pointers).length === 2) {
        const [a, b] = Object.values(this.pointers);
        const r = this.$refs.root.getBoundingClientRect();
        const k = this.pinch.k * Math.hypot(a[0] - b[0], a[1] - b[1]) / this.pinch.dist;
        this.zoomAround(k, (a[0] + b[0]) / 2 - r.left, (a[1] + b[1]) / 2 - r.top);
        return;
      }
      const g = this.gesture;
      if (!g) return;
      if (!g.moved && g.screen && Math.hypot(event.clientX - g.screen[0], event.clientY - g.screen[1]) < DRAG_THRESHOLD) return;
      if (g.kind === "pan") {
        g.moved = true;
        if (this.following) this.unfollow();
        this.view.x = g.ox + event.clientX - g.sx;
        this.view.y = g.oy + event.clientY - g.sy;
        return;
      }
      if (this.readonly || g.locked) return;
      const p = this.toWorld(event);
      g.moved = true;
      if (g.kind === "card" || g.kind === "move") {
        g.x = Math.round(g.ox + p.x - g.sx);
        g.y = Math.round(g.oy + p.y - g.sy);
      } else if (g.kind === "resize") {
        g.w = Math.max(this.geometry.zone_min, Math.round(g.ox + p.x - g.sx));
        g.h = Math.max(this.geometry.zone_min, Math.round(g.oy + p.y - g.sy));
      }
    },
    onPointerUp(event) {
      delete this.pointers[event.pointerId];
      if (Object.keys(this.pointers).length < 2) this.pinch = null;
      const g = this.gesture;
      this.gesture = null;
      if (!g) return;
      if (g.kind === "card") {
        if (!g.moved) return this.$emit("card_click", { id: g.id });
        this.settleCard(g);
        this.$emit("card_move", { id: g.id, x: g.x, y: g.y });
        this.reportPointer(event, true);  // peers see the drag end now, not at the end of the pointer's window
      } else if (g.kind === "move" || g.kind === "resize") {
        if (!g.moved) return this.$emit("zone_click", { id: g.id });
        const zone = this.zoneMap[g.id];
        if (!zone) return;
        const change = g.kind === "move" ? { x: g.x, y: g.y } : { w: g.w, h: g.h };
        Object.assign(zone, change);
        this.$emit("zone_change", { id: g.id, ...change });
      }
    },
    settleCard(g) {
      // optimistic: show the card where the server will put it; the server's patch confirms it
      const card = this.cardMap[g.id];
      if (!card) return;
      const zone = this.zoneAt(g.x + this.geometry.card_w / 2, g.y + this.geometry.card_h / 2);
      Object.assign(card, zone ? { zone: zone.id, x: g.x - zone.x, y: g.y - zone.y } : { zone: null, x: g.x, y: g.y });
    },
    // ---- comments ---------------------------------------------------------------------------------------------
    setAttention(ids, reasons) {
      this.attention = ids;
      this.reasons = reasons || {};
    },
    setTool(tool) {
      this.tool = tool;
    },
    commentAt(event, hit) {
      // a worktree card beats the zone it sits in; the server turns the point into an offset from the target
      const p = this.toWorld(event);
      this.tool = "select";
      this.$emit("comment_at", { x: Math.round(p.x), y: Math.round(p.y), card: hit.card || null, zone: hit.zone || null });
    },
    focus(target) {
      // pan (and zoom to fit if needed) so the pin, card or zone sits in the middle, then flash it
      let box = null;
      if (target.kind === "pin") {
        const pin = this.pinList.find((p) => p.id === target.id);
        const pos = pin && this.pinPos(pin);
        if (pos) box = [pos.x - 120, pos.y - 120, 240, 240];
      } else if (target.kind === "card" && this.cardMap[target.id]) {
        const pos = this.cardPos(this.cardMap[target.id]);
        box = [pos.x, pos.y, this.geometry.card_w, this.geometry.card_h];
      } else if (target.kind === "zone" && this.zoneMap[target.id]) {
        const z = this.zoneMap[target.id];
        box = [z.x, z.y, z.w, z.h];
      }
      if (!box) return false;
      if (this.following) this.unfollow();
      const r = this.$refs.root.getBoundingClientRect();
      const k = Math.min(1, Math.max(MIN_ZOOM, Math.min((r.width - 96) / box[2], (r.height - 96) / box[3])));
      this.view = { k, x: r.width / 2 - (box[0] + box[2] / 2) * k, y: r.height / 2 - (box[1] + box[3] / 2) * k };
      this.flash = target.id;
      setTimeout(() => { if (this.flash === target.id) this.flash = null; }, 2500);
      return true;
    },
    capture(event) {
      try { this.$refs.root.setPointerCapture(event.pointerId); } catch (e) { /* pointer already gone */ }
    },
    // ---- presence -------------------------------------------------------------------------------------------------
    reportPointer(event, immediately = false) {
      // paced to 10 Hz here (`paced`); the timestamp lets the server drop out-of-order updates
      const p = this.toWorld(event);
      const g = this.gesture;
      let label = "";
      let drag = null;
      if (g && g.kind === "card" && g.moved) {
        const card = this.cardMap[g.id];
        const zone = this.zoneAt(g.x + this.geometry.card_w / 2, g.y + this.geometry.card_h / 2);
        label = `dragging ${card ? card.name : ""}` + (zone ? ` → ${zone.label}` : "");
        drag = { id: g.id, x: g.x, y: g.y };
      } else {
        const hit = event.target.closest && event.target.closest("[data-card-id],[data-zone-id]");
        const card = hit && hit.dataset.cardId && this.cardMap[hit.dataset.cardId];
        const zone = hit && !hit.dataset.cardId && this.zoneMap[hit.dataset.zoneId];
        label = card ? `hovering ${card.name}` : zone ? `hovering ${zone.label}` : "";
      }
      const report = { x: Math.round(p.x), y: Math.round(p.y), t: performance.timeOrigin + performance.now(), label, drag };
      if (immediately) this.sendPointer.now(report);
      else this.sendPointer(report);
    },
    onPeers(event) {
      // a drag that just ended keeps its last position until the server's card patch lands (no jump back)
      const drags = { ...event.detail.drags };
      for (const [id, pos] of Object.entries(this.remoteDrags)) {
        if (!drags[id] && !pos.settling) {
          drags[id] = { ...pos, settling: true };
          setTimeout(() => { if (this.remoteDrags[id] && this.remoteDrags[id].settling) delete this.remoteDrags[id]; }, 1000);
        } else if (!drags[id] && pos.settling) drags[id] = pos;
      }
      this.remoteDrags = drags;
      const f = event.detail.follow;
      this.following = !!f;
      if (f) {
        const r = this.$refs.root.getBoundingClientRect();
        this.view = { k: f.k, x: r.width / 2 - f.x * f.k, y: r.height / 2 - f.y * f.k };
      }
    },
    unfollow() {
      this.following = false;
      this.$emit("unfollow", {});
    },
    // ---- viewport ---------------------------------------------------------------------------------------------
    onWheel(event) {
      if (this.following) this.unfollow();
      if (event.ctrlKey || event.metaKey) {
        const r = this.$refs.root.getBoundingClientRect();
        this.zoomAround(this.view.k * Math.exp(-event.deltaY * 0.01), event.clientX - r.left, event.clientY - r.top);
      } else {
        this.view.x -= event.deltaX;
        this.view.y -= event.deltaY;
      }
    },
    zoomAround(k, sx, sy) {
      k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, k));
      const wx = (sx - this.view.x) / this.view.k;
      const wy = (sy - this.view.y) / this.view.k;
      this.view = { k, x: sx - wx * k, y: sy - wy * k };
    },
    zoomBy(factor) {
      if (this.following) this.unfollow();
      const r = this.$refs.root.getBoundingClientRect();
      this.zoomAround(this.view.k * factor, r.width / 2, r.height / 2);
    },
    zoomTo(k) {
      if (this.following) this.unfollow();
      const r = this.$refs.root.getBoundingClientRect();
      this.zoomAround(k, r.width / 2, r.height / 2);
    },
    fit() {
      const boxes = [
        ...this.zoneList.map((z) => [z.x, z.y, z.x + z.w, z.y + z.h]),
        ...this.cardList.map((c) => { const p = this.cardPos(c); return [p.x, p.y, p.x + this.geometry.card_w, p.y + this.geometry.card_h]; }),
      ];
      const r = this.$refs.root.getBoundingClientRect();
      if (!boxes.length || !r.width) { this.view = { x: r.width / 2 || 0, y: r.height / 2 || 0, k: 1 }; return; }
      const x0 = Math.min(...boxes.map((b) => b[0])), y0 = Math.min(...boxes.map((b) => b[1]));
      const x1 = Math.max(...boxes.map((b) => b[2])), y1 = Math.max(...boxes.map((b) => b[3]));
      const pad = 48;
      const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, Math.min((r.width - 2 * pad) / (x1 - x0), (r.height - 2 * pad) / (y1 - y0), 1)));
      this.view = { k, x: (r.width - (x1 - x0) * k) / 2 - x0 * k, y: (r.height - (y1 - y0) * k) / 2 - y0 * k };
    },
    centerOn(x, y) {
      const r = this.$refs.root.getBoundingClientRect();
      this.view = { ...this.view, x: r.width / 2 - x * this.view.k, y: r.height / 2 - y * this.view.k };
    },
    viewCenter() {
      const r = this.$refs.root.getBoundingClientRect();
      return { x: Math.round((r.width / 2 - this.view.x) / this.view.k), y: Math.round((r.height / 2 - this.view.y) / this.view.k) };
    },
  },
};
