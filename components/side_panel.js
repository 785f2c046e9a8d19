// The panel beside the board canvas: no backdrop, the canvas stays live. Its left edge resizes it (drag, or the arrow
// keys when focused); the width is reported once a resize ends, so the server can remember it for this user.
export default {
  template: `
    <aside class="agor-side" :style="{ width: w + 'px' }" :aria-label="label">
      <div class="agor-side-handle" role="separator" aria-orientation="vertical" tabindex="0"
           aria-label="Resize the panel (left and right arrow keys)" :aria-valuenow="w" :aria-valuemin="min"
           :aria-valuemax="max()" @pointerdown="down" @keydown.left.prevent="nudge(32)"
           @keydown.right.prevent="nudge(-32)"></div>
      <slot></slot>
    </aside>
  `,
  props: { width: Number, min: Number, label: String },
  data() {
    return { w: this.width };
  },
  methods: {
    max() {
      return Math.max(this.min, window.innerWidth - 320); // the canvas keeps at least 320 px
    },
    clamp(w) {
      return Math.round(Math.min(this.max(), Math.max(this.min, w)));
    },
    down(event) {
      if (event.button !== 0) return;
      const x0 = event.clientX, w0 = this.w, handle = event.currentTarget;
      handle.setPointerCapture(event.pointerId);
      const move = (e) => { this.w = this.clamp(w0 + x0 - e.clientX); };
      const up = () => {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        handle.removeEventListener("pointercancel", up);
        this.$emit("resized", { width: this.w });
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
      handle.addEventListener("pointercancel", up);
      event.preventDefault();
    },
    nudge(dw) {
      this.w = this.clamp(this.w + dw);
      this.$emit("resized", { width: this.w });
    },
  },
};
