/* The submit form, enhanced: drag and drop, a resumable upload with a progress bar, then
 * the live status.
 *
 * Without this script the form posts normally and the server answers with the
 * submission's page. With it, the file goes to /api/v1/uploads/ with the tus 1.0
 * protocol (docs/uploads.md) in pieces of CHUNK bytes at first, then of about
 * PIECE_SECONDS' worth at the speed the last one went (nextPiece): after a network failure
 * the script asks the server how much it has (HEAD) and goes on from there, and after a
 * reload it finds the upload again (its URL is kept in localStorage, keyed by the file's
 * name, size and date). Then the form is posted by XMLHttpRequest, with `upload=<id>`
 * instead of the file, asking for JSON, and the page follows the new submission with
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
  // The whole zone opens the file picker, not only the small "Choose file" button.
  zone.addEventListener("click", function (event) {
    if (event.target === input || event.target.closest("label, a, button")) return;
    input.click();
  });
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
    // The server's counts (selectors.team_quota), never a local guess: a file that fails
    // validation stops counting once it is rejected.
    refreshQuota();
    window.HeldoutStatus.follow(panel, data.status_url, data.page_url, { focus: true, onDone: refreshQuota });
  }

  async function refreshQuota() {
    const used = document.getElementById("quota-used");
    if (!used || !form.dataset.quotaUrl) return;
    try {
      const response = await fetch(form.dataset.quotaUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const quota = await response.json();
      used.textContent = String(quota.daily.used);
      const total = document.getElementById("quota-total-used");
      if (total) total.textContent = String(quota.total.used);
    } catch (error) {
      // The counter is a courtesy; the next page load shows the server's numbers.
    }
  }

  const CHUNK = 5 * 1024 * 1024;
  const PIECE_MAX = 256 * 1024 * 1024;
  const PIECE_SECONDS = 2;

  // As the heldout client does (client/heldout/transfer.py): a fast link gets large pieces
  // (each PATCH ends with the server's fsync), a slow one small (a cut costs little).
  function nextPiece(length, seconds) {
    const rate = length / Math.max(seconds, 0.001);
    return Math.floor(Math.max(CHUNK, Math.min(PIECE_MAX, 4 * length, rate * PIECE_SECONDS)));
  }
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;

  function tusHeaders(extra) {
    return Object.assign({ "Tus-Resumable": "1.0.0", "X-CSRFToken": csrf }, extra || {});
  }

  function b64(text) {
    return btoa(String.fromCharCode.apply(null, new TextEncoder().encode(text)));
  }

  function storageKey(file) {
    return ["heldout-upload", form.dataset.competition, file.name, file.size, file.lastModified].join(":");
  }

  function remembered(file) {
    try { return window.localStorage.getItem(storageKey(file)); } catch (e) { return null; }
  }

  function remember(file, url) {
    try {
      if (url) window.localStorage.setItem(storageKey(file), url);
      else window.localStorage.removeItem(storageKey(file));
    } catch (e) { /* private browsing: the upload still works, only not across reloads */ }
  }

  function Refused(status, text) {
    this.status = status;
    this.text = text;
  }

  // The server's offset for an upload, or null if it no longer has it.
  async function serverOffset(url) {
    const response = await fetch(url, { method: "HEAD", headers: tusHeaders(), cache: "no-store" });
    if (response.status === 404) return null;
    if (!response.ok) throw new Refused(response.status, "");
    return Number(response.headers.get("Upload-Offset"));
  }

  async function createUpload(file) {
    const metadata = "filename " + b64(file.name) + ",competition " + b64(form.dataset.competition);
    const response = await fetch(form.dataset.uploadsUrl, {
      method: "POST",
      headers: tusHeaders({ "Upload-Length": String(file.size), "Upload-Metadata": metadata }),
    });
    if (response.status !== 201) throw new Refused(response.status, await response.text());
    return response.headers.get("Location");
  }

  // One PATCH of `size` bytes at `offset`; resolves with the server's new offset.
  function sendPiece(url, file, offset, size) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("PATCH", url);
      const headers = tusHeaders({ "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" });
      Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      xhr.upload.addEventListener("progress", function (e) {
        if (file.size) setProgress((offset + e.loaded) / file.size);
      });
      xhr.addEventListener("load", function () {
        if (xhr.status === 204) resolve(Number(xhr.getResponseHeader("Upload-Offset")));
        else reject(new Refused(xhr.status, xhr.responseText));
      });
      xhr.addEventListener("error", function () { reject(new Refused(0, "")); });
      xhr.send(file.slice(offset, Math.min(offset + size, file.size)));
    });
  }

  function retryable(error) {
    // Network failures, a busy upload (423), an offset we got wrong (409), server trouble.
    return error instanceof Refused && [0, 409, 423, 500, 502, 503, 504].indexOf(error.status) >= 0;
  }

  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // Sends the whole file, resuming wherever the server is; resolves with the upload's URL.
  async function upload(file) {
    let url = remembered(file);
    let offset = url ? await serverOffset(url) : null;
    if (offset === null) {
      url = await createUpload(file);
      remember(file, url);
      offset = 0;
    } else if (offset > 0) {
      barText.textContent = "Resuming from " + Math.round((offset / file.size) * 100) + "%…";
    }
    let failures = 0;
    let piece = CHUNK;
    while (offset < file.size) {
      const started = performance.now();
      try {
        const length = Math.min(piece, file.size - offset);
        offset = await sendPiece(url, file, offset, length);
        piece = nextPiece(length, (performance.now() - started) / 1000);
        failures = 0;
      } catch (error) {
        piece = CHUNK;
        if (!retryable(error) || failures >= RETRY_DELAYS_MS.length) throw error;
        barText.textContent = "Connection lost; retrying…";
        await wait(RETRY_DELAYS_MS[failures]);
        failures += 1;
        const known = await serverOffset(url).catch(function () { return offset; });
        if (known === null) throw new Refused(404, "");
        offset = known;
      }
    }
    return url;
  }

  function submitForm(uploadUrl) {
    const data = new FormData(form);
    data.delete("file");
    data.set("upload", uploadUrl.replace(/\/$/, "").split("/").pop());
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.addEventListener("load", function () {
      button.disabled = false;
      if (xhr.status === 202) {
        barText.textContent = "Uploaded.";
        remember(input.files[0], null);
        accepted(JSON.parse(xhr.responseText));
      } else {
        progress.hidden = true;
        showError(errorMessage(xhr));
      }
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      showError("The file is uploaded, but the submission could not be sent: check your connection and submit again (the upload is not repeated).");
    });
    xhr.send(data);
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
    setProgress(0);
    progress.hidden = false;
    progress.scrollIntoView({ block: "nearest" });
    button.disabled = true;
    upload(file).then(function (url) {
      setProgress(1);
      submitForm(url);
    }).catch(function (error) {
      button.disabled = false;
      progress.hidden = true;
      if (error instanceof Refused && error.status === 404) remember(file, null);
      if (error instanceof Refused && error.status > 0) {
        showError(errorMessage({ status: error.status, responseText: error.text }));
      } else {
        showError("The upload was interrupted: check your connection and submit again; it resumes where it stopped.");
      }
    });
  });
})();
