// A worktree terminal: NiceGUI's xterm.js build with flow control and auto-fit.
// Output arrives through `feed(text, size)`; once xterm.js has parsed it the component emits `ack` with that size,
// and the server reads more only while little is unacknowledged (ttyd/wetty-style flow control), so a flood can
// neither fill the browser's memory nor delay Ctrl-C.
import { Terminal, FitAddon, WebLinksAddon } from "nicegui-xterm";

export default {
  template: `<div class="agor-terminal" style="width: 100%; height: 100%; min-height: 0"></div>`,
  props: {
    options: Object,
    resourcePath: String,
  },
  mounted() {
    this.$nextTick().then(() => loadStyles(window.path_prefix + this.resourcePath + "/xterm.css"));
    this.terminal = new Terminal(this.options);
    this.fitAddon = new FitAddon();
    this.terminal.loadAddon(this.fitAddon);
    this.terminal.loadAddon(new WebLinksAddon());
    this.terminal.open(this.$el);
    this.terminal.onData((data) => this.$emit("data", data));
    // events sent before NiceGUI's handshake may arrive out of order: a sequence number tells the newest size
    this.seq = 0;
    this.terminal.onResize(({ cols, rows }) => this.$emit("resize", { cols, rows, seq: ++this.seq }));
    this.observer = new ResizeObserver(() => this.fit());
    this.observer.observe(this.$el);
    this.fit();
    this.ready();
  },
  unmounted() {
    this.observer.disconnect();
    this.terminal.dispose();
  },
  methods: {
    fit() {
      if (this.$el.offsetWidth > 0 && this.$el.offsetHeight > 0) this.fitAddon.fit();
    },
    feed(text, size) {
      this.terminal.write(text, () => this.$emit("ack", size));
    },
    ready() {
      this.$emit("ready", { cols: this.terminal.cols, rows: this.terminal.rows, seq: ++this.seq });
    },
    reopen() {
      this.terminal.reset();
      this.ready();
    },
    focus() {
      this.terminal.focus();
    },
  },
};

function loadStyles(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  document.head.appendChild(link);
}
