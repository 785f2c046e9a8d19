// Other people's cursors on the board, drawn inside the canvas's world layer (so in canvas coordinates) at a
// constant screen size. The server sends the board once (prop `peers`) and then only the fields that changed (`patch`).
// A move only sets that cursor's `transform` (no re-render): Vue renders who is shown, their names and labels.
// Live drags and the followed viewport are handed to the canvas through a DOM event, when they change.
const SMOOTH_MAX_MS = 100; // a cursor glides between two positions received within this, and jumps otherwise

// The server calls the page's layer (a board page has one) by this name, in one message made for all of a board's pages.
let shown = null;
window.agorPresence = (method, args) => shown?.[method](...args);

// What Vue draws of a person (everything but the position): a change of it re-renders the layer.
const looks = (p) => ({ conn: p.conn, user: p.user, name: p.name, color: p.color, label: p.label, faded: p.faded });
const sameLooks = (a, b) => a.user === b.user && a.name === b.name && a.color === b.color && a.label === b.label
  && a.faded === b.faded && (a.x === null) === (b.x === null);

function draw(spot) {
  spot.el.style.transitionDuration = `${Math.round(spot.glide)}ms, .6s`;
  spot.el.style.transform = `translate(${spot.x}px,${spot.y}px) scale(calc(1 / var(--agor-k, 1)))`;
}

export default {
  template: `
    <div class="agor-presence">
      <div v-for="p in others" :key="p.conn" class="agor-cursor" :class="{faded: p.faded}" aria-hidden="true"
           :data-user-id="p.user" :ref="(el) => place(p.conn, el)">
        <svg width="18" height="18" viewBox="0 0 18 18"><path d="M1 1 L1 15 L5 11 L8 17 L10 16 L7 10 L13 10 Z"
             :fill="p.color" stroke="white" stroke-width="1.2"/></svg>
        <span class="agor-cursor-label" :style="{background: p.color}">{{ p.name }}<template v-if="p.label"> · {{ p.label }}</template></span>
      </div>
    </div>
  `,
  props: { peers: Array, me: String },
  data() {
    return { others: [] }; // looks of the people whose cursor is shown, in the server's join order
  },
  created() {
    this.board = new Map(); // conn -> the latest entry, in join order (new people come last)
    this.spots = new Map(); // conn -> {x, y, at, glide, el}: where a cursor is, outside Vue's reactivity
    this.announced = null;
    this.take(this.peers || [], []);
  },
  mounted() {
    shown = this;
    this.announce();
  },
  unmounted() {
    if (shown === this) shown = null;
  },
  methods: {
    patch(changed, gone) {
      this.take(changed, gone);
      this.announce();
    },
    reset(peers) { // the whole board: after the page connected, or reconnected having missed pushes
      const now = new Set(peers.map((p) => p.conn));
      this.patch(peers, [...this.board.keys()].filter((conn) => !now.has(conn)));
    },
    take(changed, gone) {
      let redraw = false;
      for (const conn of gone) {
        redraw = this.board.delete(conn) || redraw;
        this.spots.delete(conn);
      }
      for (const change of changed) { // a new person whole; for the others their conn and what changed
        const before = this.board.get(change.conn);
        const p = before ? { ...before, ...change } : change;
        this.board.set(p.conn, p);
        if (p.conn !== this.me && p.x !== null) this.move(p);
        redraw = redraw || !before || !sameLooks(before, p);
      }
      if (redraw) this.others = [...this.board.values()].filter((p) => p.conn !== this.me && p.x !== null).map(looks);
    },
    move(p) {
      const now = performance.now();
      const spot = this.spots.get(p.conn);
      if (!spot) {
        this.spots.set(p.conn, { x: p.x, y: p.y, at: now, glide: 0, el: null });
        return;
      }
      if (spot.x === p.x && spot.y === p.y) return;
      const gap = now - spot.at;
      Object.assign(spot, { x: p.x, y: p.y, at: now, glide: gap <= SMOOTH_MAX_MS ? gap : 0 });
      if (spot.el) draw(spot);
    },
    place(conn, el) {
      // Vue hands over a cursor's element when it is created (and again, the same element, when the layer re-renders)
      const spot = this.spots.get(conn);
      if (!el || !spot || spot.el === el) return;
      spot.el = el;
      draw({ ...spot, glide: 0 });
    },
    announce() {
      const drags = {};
      let follow = null;
      const mine = this.board.get(this.me);
      for (const p of this.board.values()) {
        if (p.conn !== this.me && p.drag) drags[p.drag.id] = { ...p.drag, by: p.name };
        if (mine && mine.following && p.user === mine.following && p.viewport) follow = p.viewport;
      }
      const key = JSON.stringify([drags, follow]);
      if (key === this.announced) return; // a plain cursor move: nothing for the canvas
      this.announced = key;
      this.$el.dispatchEvent(new CustomEvent("agor-peers", { bubbles: true, detail: { drags, follow } }));
    },
  },
};
