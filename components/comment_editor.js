// A comment textarea with @mention autocomplete. Enter sends, Shift+Enter starts a new line.
// Typing "@" after a space (or at the start) lists the board's people; arrows + Enter/Tab pick one, Esc closes.
export default {
  template: `
    <div class="agor-editor">
      <textarea ref="area" v-model="text" :placeholder="placeholder" rows="2" maxlength="20480"
                @keydown="onKey" @input="onInput" @click="onInput" @blur="onBlur"></textarea>
      <div v-if="matches.length" class="agor-mentions" role="listbox">
        <div v-for="(u, i) in matches" :key="u.id" class="agor-mention-option" :class="{ active: i === index }"
             role="option" :data-user-id="u.id" @mousedown.prevent="pick(u)">
          <span class="agor-mention-face" :style="{ background: u.color }">{{ u.initials }}</span>{{ u.name }}
        </div>
      </div>
      <div class="agor-editor-row">
        <span class="agor-editor-hint">Markdown · @ to mention · Enter to send</span>
        <button v-if="cancellable" type="button" class="agor-editor-cancel" @click="$emit('cancel')">Cancel</button>
        <button type="button" class="agor-editor-send" :disabled="!text.trim()" @click="send">{{ submitLabel }}</button>
      </div>
    </div>
  `,
  props: {
    users: Array,
    placeholder: String,
    submitLabel: String,
    initial: String,
    cancellable: Boolean,
  },
  data() {
    return { text: this.initial || "", query: null, start: 0, index: 0 };
  },
  computed: {
    matches() {
      if (this.query === null) return [];
      const q = this.query.toLocaleLowerCase();
      return (this.users || []).filter((u) => u.name.toLocaleLowerCase().includes(q)).slice(0, 8);
    },
  },
  methods: {
    onInput() {
      const area = this.$refs.area;
      const before = this.text.slice(0, area.selectionStart);
      const match = /(^|\s)@([^@\n]{0,40})$/u.exec(before);
      this.query = match ? match[2] : null;
      this.start = match ? before.length - match[2].length - 1 : 0;
      this.index = 0;
      this.$emit("typing", { text: this.text });
    },
    onKey(event) {
      if (this.matches.length) {
        if (event.key === "ArrowDown") { this.index = (this.index + 1) % this.matches.length; event.preventDefault(); return; }
        if (event.key === "ArrowUp") { this.index = (this.index + this.matches.length - 1) % this.matches.length; event.preventDefault(); return; }
        if (event.key === "Enter" || event.key === "Tab") { this.pick(this.matches[this.index]); event.preventDefault(); return; }
        if (event.key === "Escape") { this.query = null; event.preventDefault(); event.stopPropagation(); return; }
      }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    },
    pick(user) {
      const area = this.$refs.area;
      const end = area.selectionStart;
      const insert = `@${user.name} `;
      this.text = this.text.slice(0, this.start) + insert + this.text.slice(end);
      this.query = null;
      this.$nextTick(() => {
        const caret = this.start + insert.length;
        area.focus();
        area.setSelectionRange(caret, caret);
      });
    },
    onBlur() {
      setTimeout(() => { this.query = null; }, 150);
    },
    send() {
      if (!this.text.trim()) return;
      this.$emit("submit", { text: this.text });
    },
    clear() {
      this.text = "";
      this.query = null;
    },
    focus() {
      this.$nextTick(() => this.$refs.area && this.$refs.area.focus());
    },
  },
};
