// The rating page: one clip at a time; every click on a score is saved at once (POST /api/answer).
"use strict";
const WORDS = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"};
const $ = (id) => document.getElementById(id);
let current = null;

async function call(method, url, body) {
  const response = await fetch(url, {
    method, credentials: "same-origin",
    headers: body ? {"Content-Type": "application/json"} : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function showError(error) {
  $("error").textContent = `Could not save: ${error.message}. Please try again.`;
  $("error").hidden = false;
}

function complete() {
  return current && current.criteria.every((c) => c.key in current.scores);
}

function render(next) {
  current = next;
  $("intro").hidden = true;
  if (next.done) {
    $("rate").hidden = true;
    $("done").hidden = false;
    $("total").textContent = next.total;
    return;
  }
  $("rate").hidden = false;
  $("position").textContent = `Video ${next.position} of ${next.total}`;
  $("bar").max = next.total;
  $("bar").value = next.position - 1;
  const video = $("clip");
  video.src = next.video;
  // A clip already partly rated (a rater coming back) needs no second viewing.
  const watched = Object.keys(next.scores).length > 0;
  const form = $("questions");
  form.replaceChildren();
  for (const criterion of next.criteria) {
    const group = document.createElement("fieldset");
    group.dataset.criterion = criterion.key;
    const legend = document.createElement("legend");
    legend.innerHTML = `<b></b> <span></span>`;
    legend.querySelector("b").textContent = criterion.label;
    legend.querySelector("span").textContent = criterion.question;
    group.append(legend);
    for (const score of next.scale) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = criterion.key;
      input.value = score;
      input.checked = next.scores[criterion.key] === score;
      input.addEventListener("change", () => answer(criterion.key, score));
      label.append(input, ` ${score} `, Object.assign(document.createElement("small"), {textContent: WORDS[score] || ""}));
      group.append(label);
    }
    form.append(group);
  }
  for (const input of form.querySelectorAll("input")) input.disabled = !watched;
  $("hint").hidden = watched;
  $("saved").textContent = "";
  $("next").disabled = !complete();
  video.onended = () => {
    for (const input of form.querySelectorAll("input")) input.disabled = false;
    $("hint").hidden = true;
  };
}

async function answer(criterion, score) {
  $("error").hidden = true;
  $("saved").textContent = "Saving…";
  try {
    const result = await call("POST", "/api/answer", {item: current.item, criterion, score});
    current.scores[criterion] = score;
    $("saved").textContent = `Saved (${result.complete} of ${result.total} videos complete)`;
    $("next").disabled = !complete();
  } catch (error) {
    showError(error);
  }
}

async function advance() {
  try {
    render(await call("GET", "/api/next"));
  } catch (error) {
    showError(error);
  }
}

$("start").addEventListener("click", async () => {
  try {
    const rater = await call("POST", "/api/start");
    $("rater").textContent = rater.rater;
    await advance();
  } catch (error) {
    showError(error);
  }
});
$("next").addEventListener("click", advance);

// A rater who comes back (the cookie is still there) continues where they stopped.
call("GET", "/api/next").then(render).then(() => call("POST", "/api/start")).then((r) => { $("rater").textContent = r.rater; })
  .catch(() => { $("intro").hidden = false; });
