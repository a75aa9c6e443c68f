// Optional enhancements: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Board filters apply as soon as a select changes.
  document.querySelectorAll("form.filters select").forEach((el) => {
    el.addEventListener("change", () => el.form.submit());
  });
  // Select the new API token with one click.
  const tok = document.getElementById("new-token");
  if (tok) {
    tok.addEventListener("click", () => {
      const r = document.createRange();
      r.selectNodeContents(tok);
      const s = window.getSelection();
      s.removeAllRanges();
      s.addRange(r);
    });
  }
});
