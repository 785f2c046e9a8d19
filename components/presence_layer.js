// Other people's cursors on the board, drawn inside the canvas's world layer (so in canvas coordinates) at a
// constant screen size. Live drags and the followed viewport are handed to the canvas through a DOM event.
export default {
  template: `
    <div class="agor-presence">
      <div v-for="p in others" :key="p.conn" class="agor-cursor" :class="{faded: p.faded}"
           :data-user-id="p.user" :style="{transform: 'translate(' + p.x + 'px,' + p.y + 'px) scale(calc(1 / var(--agor-k, 1)))'}">
        <svg width="18" height="18" viewBox="0 0 18 18"><path d="M1 1 L1 15 L5 11 L8 17 L10 16 L7 10 L13 10 Z"
             :fill="p.color" stroke="white" stroke-width="1.2"/></svg>
        <span class="agor-cursor-label" :style="{background: p.color}">{{ p.name }}<template v-if="p.label"> · {{ p.label }}</template></span>
      </div>
    </div>
  `,
  props: { peers: Array, me: String },
  computed: {
    others() {
      return (this.peers || []).filter((p) => p.conn !== this.me && p.x !== null);
    },
  },
  watch: {
    peers: { handler() { this.announce(); }, deep: false },
  },
  mounted() {
    this.announce();
  },
  methods: {
    announce() {
      const drags = {};
      let follow = null;
      const mine = (this.peers || []).find((p) => p.conn === this.me);
      for (const p of this.peers || []) {
        if (p.conn !== this.me && p.drag) drags[p.drag.id] = { ...p.drag, by: p.name };
        if (mine && mine.following && p.user === mine.following && p.viewport) follow = p.viewport;
      }
      this.$el.dispatchEvent(new CustomEvent("agor-peers", { bubbles: true, detail: { drags, follow } }));
    },
  },
};
