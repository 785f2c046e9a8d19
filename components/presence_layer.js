// Other people's cursors on the board, drawn inside the canvas's world layer (so in canvas coordinates) at a
// constant screen size. The server sends the board once (prop `peers`) and then only what changed (`patch`).
// Live drags and the followed viewport are handed to the canvas through a DOM event.
const SMOOTH_MAX_MS = 100; // a cursor glides between two positions received within this, and jumps otherwise

export default {
  template: `
    <div class="agor-presence">
      <div v-for="p in others" :key="p.conn" class="agor-cursor" :class="{faded: p.faded}" aria-hidden="true"
           :data-user-id="p.user" :style="cursorStyle(p)">
        <svg width="18" height="18" viewBox="0 0 18 18"><path d="M1 1 L1 15 L5 11 L8 17 L10 16 L7 10 L13 10 Z"
             :fill="p.color" stroke="white" stroke-width="1.2"/></svg>
        <span class="agor-cursor-label" :style="{background: p.color}">{{ p.name }}<template v-if="p.label"> · {{ p.label }}</template></span>
      </div>
    </div>
  `,
  props: { peers: Array, me: String },
  data() {
    return { board: (this.peers || []).map((p) => ({ ...p, glide: 0, at: 0 })) };
  },
  computed: {
    others() {
      return this.board.filter((p) => p.conn !== this.me && p.x !== null);
    },
  },
  mounted() {
    this.announce();
  },
  methods: {
    patch(changed, gone) {
      const now = performance.now();
      const byConn = new Map(this.board.map((p) => [p.conn, p]));
      for (const conn of gone) byConn.delete(conn);
      for (const p of changed) {
        const before = byConn.get(p.conn);
        const moved = before && (before.x !== p.x || before.y !== p.y);
        const gap = moved ? now - before.at : Infinity;
        byConn.set(p.conn, { ...p, glide: gap <= SMOOTH_MAX_MS ? gap : 0, at: moved || !before ? now : before.at });
      }
      // join order is the server's; new people come last
      this.board = [...byConn.values()];
      this.announce();
    },
    cursorStyle(p) {
      return {
        transform: `translate(${p.x}px,${p.y}px) scale(calc(1 / var(--agor-k, 1)))`,
        transitionDuration: `${Math.round(p.glide)}ms, .6s`,
      };
    },
    announce() {
      const drags = {};
      let follow = null;
      const mine = this.board.find((p) => p.conn === this.me);
      for (const p of this.board) {
        if (p.conn !== this.me && p.drag) drags[p.drag.id] = { ...p.drag, by: p.name };
        if (mine && mine.following && p.user === mine.following && p.viewport) follow = p.viewport;
      }
      this.$el.dispatchEvent(new CustomEvent("agor-peers", { bubbles: true, detail: { drags, follow } }));
    },
  },
};
