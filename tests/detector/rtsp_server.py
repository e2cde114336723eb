#!/usr/bin/python3
"""A real RTSP server on loopback for the live-mode tests (GStreamer's gst-rtsp-server).

Run with Debian's ``/usr/bin/python3`` (it needs ``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``,
which the project's virtualenv does not see)::

    /usr/bin/python3 tests/detector/rtsp_server.py --port 0 --clip clip.mp4

It decodes the clip once into memory (small test clips only) and serves it as a live H.264 stream
that loops for ever, at the clip's frame rate; without ``--clip`` it serves GStreamer's test
pattern. When it listens it prints one line ``READY rtsp://127.0.0.1:<port><path>`` on stdout.
SIGTERM or SIGINT stop it. ``--fail-describe N`` answers the first N DESCRIBE requests that open the
stream (not streetwatch's liveness probe, which any answer satisfies) with 503 Service Unavailable, as
a server does that is still preparing its media.

Only the standard library and GObject introspection are imported: no numpy here.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def decode_clip(path: str, width: int, height: int, fps: int) -> list[bytes]:
    """Every frame of the clip as raw I420 bytes at width x height, resampled to ``fps``."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! videorate ! '
        f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! "
        "appsink name=sink sync=false emit-signals=false max-buffers=0"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    frames: list[bytes] = []
    waited = 0.0
    while True:
        # A damaged file can stall the decoder or fail without ending the stream: look at the bus
        # between short waits and never wait for ever.
        sample = sink.emit("try-pull-sample", Gst.SECOND // 2)
        if sample is not None:
            waited = 0.0
            buffer = sample.get_buffer()
            ok, info = buffer.map(Gst.MapFlags.READ)
            if ok:
                frames.append(bytes(info.data))
                buffer.unmap(info)
            continue
        message = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if message is not None and message.type == Gst.MessageType.ERROR:
            pipeline.set_state(Gst.State.NULL)
            err, debug = message.parse_error()
            raise SystemExit(f"rtsp_server: cannot decode {path}: {err.message} ({debug})")
        if message is not None or sink.get_property("eos"):
            break
        waited += 0.5
        if waited >= 10:
            pipeline.set_state(Gst.State.NULL)
            raise SystemExit(f"rtsp_server: decoding {path} stalled")
    pipeline.set_state(Gst.State.NULL)
    if not frames:
        raise SystemExit(f"rtsp_server: {path} has no frames")
    return frames


class LoopingClipFactory(GstRtspServer.RTSPMediaFactory):
    """Pushes the decoded frames into an appsrc at the clip's rate, looping, like a live camera:
    each frame is stamped with the pipeline's running time when it is pushed."""

    def __init__(self, frames: list[bytes], width: int, height: int, fps: int) -> None:
        super().__init__()
        self.frames = frames
        self.caps = f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"
        self.fps = fps
        self.set_shared(True)

    def do_create_element(self, url: object) -> Gst.Element:
        launch = (
            f"( appsrc name=src is-live=true format=time do-timestamp=true caps={self.caps} ! "
            f"videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={self.fps} bitrate=800 ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        return Gst.parse_launch(launch)

    def do_configure(self, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        state = {"count": 0, "live": True}

        def push() -> bool:
            if not state["live"]:
                return False
            data = self.frames[state["count"] % len(self.frames)]
            state["count"] += 1
            result = appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(data))
            return result in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING)

        def stop(*_args: object) -> None:
            state["live"] = False

        media.connect("unprepared", stop)
        GLib.timeout_add(max(1, 1000 // self.fps), push)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--path", default="/cam", help="mount path, e.g. /cam")
    parser.add_argument("--clip", help="video file to loop (default: test pattern)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--fail-describe", type=int, default=0, help="answer the first N opening DESCRIBEs with 503")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.clip:
        frames = decode_clip(args.clip, args.width, args.height, args.fps)
        factory: GstRtspServer.RTSPMediaFactory = LoopingClipFactory(frames, args.width, args.height, args.fps)
    else:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},"
            f"framerate={args.fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if args.fail_describe:
        failing = {"left": args.fail_describe}

        def pre_describe(_client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext) -> object:
            agent = context.request.get_header(GstRtsp.RTSPHeaderField.USER_AGENT, 0)
            agent = agent[1] if isinstance(agent, tuple) else agent
            if failing["left"] > 0 and agent != "streetwatch":
                failing["left"] -= 1
                print(f"DESCRIBE answered 503 ({failing['left']} more to fail)", flush=True)
                return GstRtsp.RTSPStatusCode.SERVICE_UNAVAILABLE
            return GstRtsp.RTSPStatusCode.OK

        server.connect("client-connected", lambda _server, client: client.connect("pre-describe-request", pre_describe))
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        raise SystemExit(f"rtsp_server: cannot listen on port {args.port}")
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
