// bccd pages: progressive enhancement only; every action also works as a plain form without this file.
"use strict";
(function () {
  function copyButtons() {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      var source = document.querySelector(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          var said = button.parentElement.querySelector(".copied");
          if (said) said.textContent = "Copied.";
        });
      });
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function linkForm(threadId, csrf, hit) {
    var form = el("form", { method: "post", action: "/threads/" + threadId + "/link", "class": "inline" });
    form.appendChild(el("input", { type: "hidden", name: "csrf", value: csrf }));
    form.appendChild(el("input", { type: "hidden", name: "type", value: hit.type }));
    form.appendChild(el("input", { type: "hidden", name: "id", value: hit.id }));
    form.appendChild(el("button", { type: "submit" }, "Link"));
    return form;
  }

  function searchAsYouType() {
    var input = document.querySelector("input[data-search-as-you-type]");
    var list = document.getElementById("item-hits");
    if (!input || !list) return;
    var timer = null;
    var latest = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        var ticket = ++latest;
        if (!q) { list.replaceChildren(); return; }
        var url = input.dataset.searchAsYouType + "?types=deal,lead,project&q=" + encodeURIComponent(q);
        fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { results: [] }; })
          .then(function (data) {
            if (ticket !== latest) return; // an older answer arriving late
            var items = data.results.map(function (hit) {
              var li = el("li");
              var label = el("span");
              label.appendChild(el("span", { "class": "kind" }, hit.type.charAt(0).toUpperCase() + hit.type.slice(1)));
              label.appendChild(document.createTextNode(" " + hit.name + (hit.status ? " · " + hit.status : "")));
              li.appendChild(label);
              li.appendChild(linkForm(list.dataset.thread, list.dataset.csrf, hit));
              return li;
            });
            if (!items.length) items = [el("li", { "class": "empty" }, "Nothing matches “" + q + "”.")];
            list.replaceChildren.apply(list, items);
          });
      }, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    searchAsYouType();
  });
})();
