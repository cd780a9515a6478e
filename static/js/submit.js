/* The submit form, enhanced: drag and drop, an upload progress bar, then the live status.
 *
 * Without this script the form posts normally and the server answers with the
 * submission's page. With it, the same form is sent by XMLHttpRequest (its upload
 * reports progress) asking for JSON, and the page follows the new submission with
 * status.js. Errors the server gives (quota, phase closed, not joined, file too large)
 * are shown above the form.
 */
(function () {
  "use strict";

  const form = document.getElementById("submit-form");
  if (!form || !window.FormData) return;
  const input = form.querySelector("input[type=file]");
  const zone = document.getElementById("dropzone");
  const chosen = document.getElementById("chosen");
  const button = document.getElementById("submit-button");
  const progress = document.getElementById("upload-progress");
  const bar = document.getElementById("progress-bar");
  const barText = document.getElementById("progress-text");
  const alertBox = document.getElementById("submit-alert");
  const live = document.getElementById("live-status");
  const maxBytes = Number(form.dataset.maxBytes);

  zone.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });

  function size(bytes) {
    const units = ["bytes", "KB", "MB", "GB"];
    let i = 0;
    while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
    return (i === 0 ? bytes : bytes.toFixed(1)) + " " + units[i];
  }

  function describe() {
    const file = input.files[0];
    chosen.textContent = file ? "Chosen: " + file.name + " (" + size(file.size) + ")" : "";
  }

  function showError(message) {
    alertBox.textContent = message;
    alertBox.hidden = false;
    alertBox.scrollIntoView({ block: "nearest" });
  }

  function setProgress(fraction) {
    const percent = Math.round(fraction * 100);
    bar.value = percent;
    bar.textContent = percent + "%";
    barText.textContent = percent < 100 ? percent + "% uploaded" : "Uploaded; checking in…";
  }

  input.addEventListener("change", describe);
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      describe();
    }
  });

  function errorMessage(xhr) {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    if (xhr.status === 413) return "The file is larger than the limit of " + form.dataset.maxLabel + ".";
    if (!body) return "The server answered " + xhr.status + "; try again in a moment.";
    let message = body.detail || "The submission was refused.";
    if (body.code === "quota_exceeded") {
      message += body.resets_at
        ? " You can submit again from " + body.resets_at.replace("T", " ").slice(0, 16) + " UTC."
        : " This limit does not reset during the phase.";
    }
    if (Array.isArray(body.problems)) {
      body.problems.forEach(function (problem) { message += " • " + problem.message; });
    }
    if (body.errors) {
      Object.keys(body.errors).forEach(function (field) {
        message += " " + field.replace("_", " ") + ": " + body.errors[field].join(" ");
      });
    }
    return message;
  }

  function accepted(data) {
    const template = document.getElementById("status-template");
    live.replaceChildren(template.content.cloneNode(true));
    const panel = live.querySelector("#status-panel");
    panel.scrollIntoView({ block: "nearest" });
    panel.querySelector('[data-field="id"]').textContent = "#" + data.id;
    panel.dataset.statusUrl = data.status_url;
    panel.dataset.pageUrl = data.page_url;
    form.reset();
    describe();
    const used = document.getElementById("quota-used");
    if (used) used.textContent = String(Number(used.textContent) + 1);
    window.HeldoutStatus.follow(panel, data.status_url, data.page_url, { focus: true });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    alertBox.hidden = true;
    const file = input.files[0];
    if (!file) {
      showError("Choose a file to submit first.");
      input.focus();
      return;
    }
    if (file.size > maxBytes) {
      showError("The file is larger than the limit of " + form.dataset.maxLabel + ".");
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) setProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", function () {
      button.disabled = false;
      if (xhr.status === 202) {
        setProgress(1);
        barText.textContent = "Uploaded.";
        accepted(JSON.parse(xhr.responseText));
      } else {
        progress.hidden = true;
        showError(errorMessage(xhr));
      }
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      progress.hidden = true;
      showError("The upload failed: check your connection and try again.");
    });
    setProgress(0);
    progress.hidden = false;
    button.disabled = true;
    xhr.send(new FormData(form));
  });
})();
