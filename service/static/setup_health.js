/* Camera setup: the camera's status above its snapshot (issue #26). After a real move the page still draws
   the current config's zones over the newest snapshot, so they show misplaced: this notice says why, and that
   the re-drawn zones, once saved, make this view the camera's reference (the runner learns it afresh when it
   applies a version that changes the view). Status from GET /api/v1/cameras (what `streetwatch run`
   reports), kept current by the camera.health events of /api/v1/events, with a slow poll in case the event
   stream is down. */
"use strict";

(() => {
  const notice = document.getElementById("view-notice");
  if (!notice) return;
  const cameraId = document.body.dataset.camera;
  const POLL_MS = 30000;
  const NOTICE = {
    view_moved: {
      title: "⚠ 视角已偏移 The camera's view moved since these zones were drawn",
      text: "区域仍画在原来的位置，叠加在最新截图上，因此会错位：请在新截图上重新绘制区域并保存，保存的版本将成为摄像头的新参考视角。" +
        " The zones are drawn where they were, over the newest snapshot, so they no longer sit on their street:" +
        " re-draw them on this view and save. The saved version makes this view the camera's reference." +
        " (刷新截图 Reload snapshot if the picture still shows the old view.)",
    },
    obstructed: {
      title: "⚠ 镜头遮挡 The camera's view is obstructed",
      text: "截图可能显示遮挡物，请先清除遮挡；只有摄像头本身移动时才需要重新绘制区域。" +
        " The snapshot may show what covers the lens: clear it first; the zones need re-drawing only if the camera itself moved.",
    },
    blurred: {
      title: "⚠ 画面模糊 The camera's view is out of focus",
      text: "请先恢复对焦；只有摄像头本身移动时才需要重新绘制区域。" +
        " Restore its focus first; the zones need re-drawing only if the camera itself moved.",
    },
    offline: {
      title: "摄像头离线 The camera is offline",
      text: "截图可能是旧的。 This snapshot may be old.",
    },
  };

  let camera = null; // the camera's entry of GET /api/v1/cameras (null: it never reported)
  let saved = null; // a version saved on this page while the camera was not online

  function render() {
    const status = camera ? camera.status : null;
    const shown = status && NOTICE[status] ? NOTICE[status] : null;
    notice.hidden = !shown;
    notice.dataset.status = status || "";
    notice.className = "view-notice" + (status === "offline" ? " offline" : "") + (shown && saved !== null ? " saved" : "");
    if (!shown) {
      notice.replaceChildren();
      return;
    }
    const parts = [SW.el("strong", { text: shown.title }), SW.el("span", { text: shown.text })];
    if (status === "offline" && camera.last_frame_at) parts.push(SW.el("span", { text: " 最后画面 last frame " + SW.time(camera.last_frame_at) }));
    if (saved !== null) {
      parts.push(SW.el("p", { class: "small", "data-saved": saved,
        text: "已保存版本 " + saved + "：摄像头应用后将以当前视角为参考，状态恢复在线时此提示消失。" +
          " Version " + saved + " saved: once the camera applies it, what it sees then becomes its reference, and this notice goes when it reports online." }));
    }
    notice.replaceChildren(...parts);
  }

  async function load() {
    const { items } = await SW.api("/api/v1/cameras");
    camera = items.find((item) => item.id === cameraId) || null;
    if (camera && camera.status === "online") saved = null;
    render();
  }

  document.addEventListener("sw:config-saved", (event) => {
    if (camera && camera.status !== "online") {
      saved = event.detail.version;
      render();
    }
  });

  load().catch((error) => console.warn("camera status:", error.message));
  setInterval(() => load().catch((error) => console.warn("camera status:", error.message)), POLL_MS);
  SW.live(() => {}, (change) => {
    if (change.camera_id !== cameraId) return;
    camera = { ...(camera || { id: cameraId }), status: change.status, last_error: change.last_error };
    if (change.status === "online") saved = null;
    render();
  });
})();
