package dev.baton.handoff;

import dev.baton.config.Addresses;
import dev.baton.config.Protocol;
import dev.baton.daemon.Daemon;
import dev.baton.os.Spawner;
import dev.baton.socket.Listener;
import dev.baton.socket.Transport;
import dev.baton.tcp.TcpConnection;
import dev.baton.udp.UdpFlow;
import dev.baton.udp.UdpListenerHandler;
import dev.baton.udp.UdpRoute;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The serving process's side of an upgrade: starts the successor with the same command line,
 * hands it every listening socket, and once it is ready, every live connection and flow.
 *
 * <p>Until the successor says READY nothing here changes: if it fails validation, crashes or
 * is too slow, this process kills it (if needed), logs why, and goes on serving as before.
 */
public final class Predecessor {
    private static final Logger log = LoggerFactory.getLogger(Predecessor.class);

    private final Daemon daemon;
    private final List<String> command;

    /** What happened; {@code handedOver} means this process must now exit. */
    public record Outcome(boolean handedOver, long successorPid, String message) {
    }

    private final int generation;

    public Predecessor(Daemon daemon, List<String> command, int successorGeneration) {
        this.daemon = daemon;
        this.command = List.copyOf(command);
        this.generation = successorGeneration;
    }

    /** Runs one upgrade on the calling (control) thread. */
    public Outcome upgrade() {
        Transport t = daemon.transport();
        if (!t.supportsReusePortAndHandoff()) {
            return new Outcome(false, -1, "transport " + t.label() + " cannot hand sockets over; restart instead");
        }
        long started = System.nanoTime();
        int[] pair;
        long pid;
        try {
            pair = HandoffSocket.pair();
            Map<String, String> env = new HashMap<>(System.getenv());
            env.keySet().removeIf(k -> k.startsWith("LISTEN_"));
            env.remove("WATCHDOG_PID"); // names this process; the successor feeds the watchdog as itself
            env.put(Wire.ENV_FD, String.valueOf(Spawner.CHILD_FD));
            env.put("BATON_GENERATION", String.valueOf(generation));
            pid = Spawner.spawn(command, env, pair[1]);
        } catch (IOException e) {
            return new Outcome(false, -1, "cannot start the successor: " + e.getMessage());
        }
        dev.baton.os.Fds.close(pair[1]);
        log.info("upgrade: started successor pid {} ({})", pid, String.join(" ", command));
        HandoffSocket link = new HandoffSocket(pair[0]);
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread th = new Thread(r, "upgrade-timer");
            th.setDaemon(true);
            return th;
        });
        long timeoutMs = daemon.config().upgradeTimeout().toMillis();
        final long childPid = pid;
        ScheduledFuture<?> killer = timer.schedule(() -> {
            log.warn("upgrade: successor pid {} not ready within {} ms; killing it", childPid, timeoutMs);
            dev.baton.os.Fds.posix().kill(childPid, 9);
        }, timeoutMs, TimeUnit.MILLISECONDS);
        try {
            HandoffSocket.Message hello = link.receive();
            if (hello != null && hello.text().startsWith("FAIL")) {
                return failed(link, pid, "successor refused: " + hello.text().substring(4).trim());
            }
            if (hello == null || !hello.text().startsWith("HELLO")) {
                return failed(link, pid, "successor exited before it spoke" + exitStatus(pid));
            }
            int sockets = 0;
            for (Listener l : daemon.registry().all()) {
                List<Channel> socks = l.sockets();
                for (int i = 0; i < socks.size(); i++) {
                    link.send("LISTEN " + l.key().wireName() + " " + i, Transport.fd(socks.get(i)));
                    sockets++;
                }
            }
            link.send("LISTEN-END");
            HandoffSocket.Message reply = link.receive();
            if (reply == null) {
                return failed(link, pid, "successor exited before it was ready" + exitStatus(pid));
            }
            if (reply.text().startsWith("FAIL")) {
                return failed(link, pid, "successor refused: " + reply.text().substring(4).trim());
            }
            if (!reply.text().startsWith("READY")) {
                return failed(link, pid, "successor said '" + reply.text() + "'");
            }
            killer.cancel(false);
            long readyMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
            log.info("upgrade: successor pid {} ready after {} ms with {} handed-over sockets", pid, readyMs, sockets);
            return handOver(link, pid);
        } catch (IOException e) {
            return failed(link, pid, e.getMessage());
        } finally {
            killer.cancel(false);
            timer.shutdownNow();
        }
    }

    private Outcome failed(HandoffSocket link, long pid, String why) {
        link.close();
        dev.baton.os.Fds.posix().kill(pid, 9);
        for (int i = 0; i < 50 && Spawner.reap(pid) < 0; i++) {
            sleep(10);
        }
        log.error("upgrade failed: {}; still serving as before", why);
        return new Outcome(false, pid, why);
    }

    private static String exitStatus(long pid) {
        int status = -1;
        for (int i = 0; i < 100 && status < 0; i++) {
            status = Spawner.reap(pid);
            if (status < 0) {
                sleep(10);
            }
        }
        return status >= 0 ? " (exit status " + status + ")" : "";
    }

    /**
     * Waits (briefly) for the successor to say it has adopted everything, so that when `baton
     * upgrade` answers, the successor has written its pid file and owns every socket. The sockets
     * are safe either way (descriptors in flight live on in the link), so a successor that does
     * not answer in time only costs this wait.
     */
    private static void awaitTaken(HandoffSocket link) throws IOException {
        if (link.await(TAKEN_WAIT_MS)) {
            HandoffSocket.Message m = link.receive();
            if (m == null) {
                // It closed the link without a word: it died (it confirms before anything else).
                throw new IOException("the successor went away before it confirmed the state handoff");
            }
            if (!m.text().startsWith("TAKEN")) {
                log.warn("upgrade: unexpected answer to STATE-END: {}", m.text());
            }
        } else {
            log.warn("upgrade: the successor did not confirm the state handoff within {} ms", TAKEN_WAIT_MS);
        }
    }

    private static final int TAKEN_WAIT_MS = 2000;

    /** After READY: stop accepting, move every connection and flow, and report that we are done. */
    private Outcome handOver(HandoffSocket link, long pid) throws IOException {
        // Connections arriving now wait in the listen queues until the successor accepts them.
        // From here the successor accepts and reads: connections wait in the listen queues and
        // datagrams in the socket buffers only for the moment it takes to say GO.
        awaitAll(daemon.registry().stopReading(Protocol.TCP));
        awaitAll(daemon.registry().stopReading(Protocol.UDP));
        log.debug("upgrade: listeners released");
        try {
            link.send("GO");
        } catch (IOException e) {
            daemon.registry().resumeReading(Protocol.TCP);
            return failed(link, pid, "successor went away before it took over: " + e.getMessage());
        }
        int tcp = 0;
        int udp = 0;
        try {
            // UDP first: its listening sockets are paused until the flows have moved, so keep that short.
            udp = moveUdp(link);
            link.send("UDP-END " + udp);
            log.debug("upgrade: {} flows sent", udp);
            tcp = moveTcp(link);
            link.send("STATE-END " + tcp + " " + udp);
            awaitTaken(link);
        } catch (IOException e) {
            // The successor took the listeners but died while taking state: take the listeners back.
            log.error("upgrade: successor pid {} failed during the state handoff ({}); resuming", pid, e.getMessage());
            daemon.registry().resumeReading(Protocol.TCP);
            daemon.registry().resumeReading(Protocol.UDP);
            return failed(link, pid, "state handoff broke after " + tcp + " connections: " + e.getMessage());
        }
        link.close();
        daemon.registry().forgetReleased();
        String left = daemon.connections().count() > 0
                ? "; " + daemon.connections().count() + " connections could not move and are dropped" : "";
        log.info("upgrade: handed {} connections and {} flows to pid {}{}", tcp, udp, pid, left);
        daemon.proxyStatus().forEach(l -> log.info("upgrade: final counters: {}", l));
        return new Outcome(true, pid, "handed over to pid " + pid);
    }

    private int moveTcp(HandoffSocket link) throws IOException {
        long deadline = System.nanoTime() + daemon.config().drainTimeout().toNanos();
        int moved = 0;
        while (true) {
            List<TcpConnection.Snapshot> batch = new ArrayList<>();
            boolean connecting = false;
            for (EventLoop loop : daemon.workers().loops()) {
                List<TcpConnection> moving = new ArrayList<>();
                List<Future<Void>> deregistered = new ArrayList<>();
                boolean[] waiting = new boolean[1];
                await(loop.submit(() -> {
                    for (TcpConnection c : List.copyOf(daemon.connections().on(loop))) {
                        c.leaveRawPhase(); // a short exchange on raw sockets moves like the rest
                        if (c.movable()) {
                            moving.add(c);
                            deregistered.add(c.beginHandoff());
                        } else if (c.connecting()) {
                            waiting[0] = true;
                        }
                    }
                }));
                connecting |= waiting[0];
                log.debug("upgrade: {} connections on {} leaving", moving.size(), loop);
                awaitAll(deregistered);
                log.debug("upgrade: deregistered");
                await(loop.submit(() -> {
                    for (TcpConnection c : moving) {
                        TcpConnection.Snapshot s = c.snapshot();
                        if (s != null) {
                            batch.add(s);
                        }
                    }
                }));
            }
            for (TcpConnection.Snapshot s : batch) {
                sendTcp(link, s);
                moved++;
            }
            if (!connecting || System.nanoTime() > deadline) {
                return moved;
            }
            sleep(5); // connects in progress finish in microseconds on a LAN; then they move too
        }
    }

    private static void sendTcp(HandoffSocket link, TcpConnection.Snapshot s) throws IOException {
        int flags = (s.c2uInputDone() ? 1 : 0) | (s.c2uOutputDone() ? 2 : 0)
                | (s.u2cInputDone() ? 4 : 0) | (s.u2cOutputDone() ? 8 : 0);
        link.send("TCP " + Wire.enc(s.proxy()) + " " + flags + " " + s.toUpstream().length + " "
                + s.toClient().length, s.clientFd(), s.upstreamFd());
        sendPayload(link, s.toUpstream());
        sendPayload(link, s.toClient());
    }

    private static void sendPayload(HandoffSocket link, byte[] data) throws IOException {
        for (int off = 0; off < data.length; off += HandoffSocket.MAX_MESSAGE) {
            int n = Math.min(HandoffSocket.MAX_MESSAGE, data.length - off);
            byte[] chunk = new byte[n];
            System.arraycopy(data, off, chunk, 0, n);
            link.send(chunk);
        }
    }

    private int moveUdp(HandoffSocket link) throws IOException {
        // The listening sockets were released before GO. Take each flow's upstream socket off its worker, then describe it.
        int moved = 0;
        for (Listener l : daemon.registry().all()) {
            if (!(l.target() instanceof UdpRoute)) {
                continue;
            }
            List<Channel> socks = l.sockets();
            for (int i = 0; i < socks.size(); i++) {
                Channel ch = socks.get(i);
                UdpListenerHandler h = ch.pipeline().get(UdpListenerHandler.class);
                if (h == null) {
                    continue;
                }
                EventLoop loop = ch.eventLoop();
                List<UdpFlow> moving = new ArrayList<>();
                List<Future<Void>> deregistered = new ArrayList<>();
                await(loop.submit(() -> {
                    for (UdpFlow f : h.flows()) {
                        if (f.movable()) {
                            moving.add(f);
                            deregistered.add(f.beginHandoff());
                        }
                    }
                }));
                awaitAll(deregistered);
                List<UdpFlow.Snapshot> batch = new ArrayList<>();
                await(loop.submit(() -> {
                    // Replies still queued on the listening socket go with their flow.
                    Map<java.net.InetSocketAddress, List<byte[]>> queued = new HashMap<>();
                    UdpFlow.drainQueued(ch, (to, bytes) -> queued.computeIfAbsent(to, k -> new ArrayList<>()).add(bytes));
                    for (UdpFlow f : moving) {
                        batch.add(f.snapshot(queued.getOrDefault(f.client(), List.of())));
                    }
                }));
                for (UdpFlow.Snapshot s : batch) {
                    link.send("UDP " + l.key().wireName() + " " + i + " " + Wire.enc(s.proxy()) + " "
                            + Addresses.format(s.client()) + " " + Addresses.format(s.upstream()) + " "
                            + s.toUpstream().size() + " " + s.replies().size(), s.fd());
                    for (byte[] b : s.toUpstream()) {
                        link.send(b);
                    }
                    for (byte[] r : s.replies()) {
                        link.send(r);
                    }
                    moved++;
                }
            }
        }
        return moved;
    }

    private static void await(Future<?> f) {
        try {
            f.get(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("worker task failed: " + e, e);
        }
    }

    private static void awaitAll(List<? extends Future<?>> fs) {
        for (Future<?> f : fs) {
            if (!f.awaitUninterruptibly(10, TimeUnit.SECONDS)) {
                log.warn("upgrade: a worker did not release a socket within 10 s");
            }
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
