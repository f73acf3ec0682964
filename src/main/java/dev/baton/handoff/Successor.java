package dev.baton.handoff;

import dev.baton.config.Addresses;
import dev.baton.config.Protocol;
import dev.baton.daemon.Daemon;
import dev.baton.os.Fds;
import dev.baton.socket.Listener;
import dev.baton.socket.ListenerKey;
import dev.baton.socket.SocketRegistry;
import dev.baton.socket.Transport;
import dev.baton.tcp.TcpConnection;
import dev.baton.tcp.TcpProxy;
import dev.baton.udp.UdpFlow;
import dev.baton.udp.UdpListenerHandler;
import dev.baton.udp.UdpRoute;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.TreeMap;

/**
 * The new process's side of an upgrade: receives the listening sockets before it starts, says
 * READY once it serves every configured listener, then takes over each connection and flow.
 */
public final class Successor implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Successor.class);

    private final HandoffSocket link;
    private int nextLoop;

    private Successor(HandoffSocket link) {
        this.link = link;
    }

    /** The successor side if this process was started by an upgrade, else null. */
    public static Successor fromEnvironment() {
        String fd = System.getenv(Wire.ENV_FD);
        if (fd == null) {
            return null;
        }
        return new Successor(new HandoffSocket(Integer.parseInt(fd)));
    }

    /** Greets the predecessor and offers every socket it sends to the registry. */
    public int receiveListeners(SocketRegistry registry) throws IOException {
        link.send("HELLO " + ProcessHandle.current().pid());
        int count = 0;
        while (true) {
            HandoffSocket.Message m = link.receive();
            if (m == null) {
                throw new IOException("predecessor went away during the handoff");
            }
            String[] w = m.text().split(" ");
            if (w[0].equals("LISTEN-END")) {
                return count;
            }
            if (!w[0].equals("LISTEN") || m.fds().length != 1) {
                throw new IOException("unexpected handoff message: " + m.text());
            }
            registry.offer(ListenerKey.parseWireName(w[1]), Integer.parseInt(w[2]), m.fds()[0]);
            count++;
        }
    }

    /** Tells the predecessor this process cannot take over (it keeps serving). */
    public void fail(String reason) {
        try {
            link.send("FAIL " + reason);
        } catch (IOException ignored) {
            // it is gone already; nothing else to tell
        }
        link.close();
    }

    /** Reports ready and waits for the predecessor to stop accepting. */
    public void ready() throws IOException {
        link.send("READY " + ProcessHandle.current().pid());
        HandoffSocket.Message go = link.receive();
        if (go == null || !go.text().equals("GO")) {
            throw new IOException("predecessor did not hand over (it keeps serving)");
        }
    }

    /** Closes the inherited sockets of listen addresses this configuration no longer has. */
    public static int closeUnclaimed(SocketRegistry registry) {
        int n = 0;
        for (Map.Entry<ListenerKey, TreeMap<Integer, Integer>> e : registry.unclaimed().entrySet()) {
            for (int fd : e.getValue().values()) {
                Fds.close(fd);
                n++;
            }
            log.info("closed {} (no longer configured)", e.getKey());
        }
        registry.forgetUnclaimed();
        return n;
    }

    /**
     * Takes over every connection and flow the predecessor sends, until it says it is done;
     * runs {@code udpMoved} once the flows are here and {@code taken} before confirming the end.
     */
    public void receiveState(Daemon daemon, Runnable udpMoved, Runnable taken) throws IOException {
        faultForTests("start");
        int tcp = 0;
        int udp = 0;
        while (true) {
            HandoffSocket.Message m = link.receive();
            if (m == null) {
                log.warn("upgrade: predecessor went away before it finished handing over state");
                break;
            }
            String[] w = m.text().split(" ");
            int needed = w[0].equals("TCP") ? 2 : w[0].equals("UDP") ? 1 : 0;
            if (m.fds().length < needed) {
                // The kernel dropped its descriptors (this process ran out of them): lose that one
                // connection or flow (its payload messages are skipped), not all that follow.
                log.warn("upgrade: '{}' arrived without its sockets; skipping it", w[0]);
                skipPayload(w);
                continue;
            }
            switch (w[0]) {
                case "TCP" -> {
                    adoptTcp(daemon, w, m.fds());
                    tcp++;
                }
                case "UDP" -> {
                    adoptUdp(daemon, w, m.fds()[0]);
                    udp++;
                }
                case "UDP-END" -> {
                    log.debug("upgrade: {} flows adopted; reading UDP", udp);
                    udpMoved.run();
                }
                case "STATE-END" -> {
                    log.info("upgrade: took over {} connections and {} flows", tcp, udp);
                    taken.run();
                    faultForTests("announced");
                    try {
                        link.send("TAKEN " + tcp + " " + udp);
                    } catch (IOException e) {
                        log.debug("upgrade: predecessor gone before TAKEN: {}", e.getMessage());
                    }
                    return;
                }
                default -> throw new IOException("unexpected handoff message: " + w[0]);
            }
        }
    }

    /**
     * A seam for the upgrade tests: with -Dbaton.test.fault-file=F and F holding {@code point},
     * this successor deletes F and dies (exit status 70) there, as a crash would: "start" is just
     * after its predecessor stopped reading and said GO; "announced" is after it wrote the pid
     * file and took the control socket, before it confirmed the state.
     */
    private static void faultForTests(String point) {
        String f = System.getProperty("baton.test.fault-file");
        if (f == null) {
            return;
        }
        java.nio.file.Path path = java.nio.file.Path.of(f);
        try {
            if (java.nio.file.Files.exists(path) && java.nio.file.Files.readString(path).trim().equals(point)) {
                java.nio.file.Files.delete(path);
                log.error("upgrade: {} says '{}': dying in the state handoff, as asked", f, point);
                Runtime.getRuntime().halt(70);
            }
        } catch (IOException e) {
            log.warn("upgrade: {}: {}", f, e.getMessage());
        }
    }

    private void adoptTcp(Daemon daemon, String[] w, int[] fds) throws IOException {
        String name = Wire.dec(w[1]);
        int flags = Integer.parseInt(w[2]);
        byte[] toUpstream = payload(Integer.parseInt(w[3]));
        byte[] toClient = payload(Integer.parseInt(w[4]));
        TcpConnection.Snapshot s = new TcpConnection.Snapshot(name, fds[0], fds[1],
                (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, (flags & 8) != 0, toUpstream, toClient);
        Transport t = daemon.transport();
        Fds.setNonBlocking(fds[0]);
        Fds.setNonBlocking(fds[1]);
        Channel client = t.adoptSocketChannel(fds[0]);
        Channel upstream = t.adoptSocketChannel(fds[1]);
        TcpProxy proxy = daemon.tcpProxyForAdoption(name, (InetSocketAddress) upstream.remoteAddress());
        EventLoop loop = daemon.workers().loop(nextLoop++);
        TcpConnection.adopt(proxy, loop, client, upstream, s);
    }

    private void skipPayload(String[] w) throws IOException {
        if (w[0].equals("TCP")) {
            payload(Integer.parseInt(w[3]));
            payload(Integer.parseInt(w[4]));
        } else {
            datagrams(Integer.parseInt(w[6]));
            datagrams(Integer.parseInt(w[7]));
        }
    }

    private byte[] payload(int length) throws IOException {
        byte[] out = new byte[length];
        int off = 0;
        while (off < length) {
            HandoffSocket.Message m = link.receive();
            if (m == null) {
                throw new IOException("predecessor went away in the middle of a connection's data");
            }
            System.arraycopy(m.bytes(), 0, out, off, m.bytes().length);
            off += m.bytes().length;
        }
        return out;
    }

    private void adoptUdp(Daemon daemon, String[] w, int fd) throws IOException {
        ListenerKey key = ListenerKey.parseWireName(w[1]);
        int index = Integer.parseInt(w[2]);
        InetSocketAddress client = Addresses.parse(w[4], true);
        InetSocketAddress upstream = Addresses.parse(w[5], true);
        java.util.List<byte[]> toUpstream = datagrams(Integer.parseInt(w[6]));
        java.util.List<byte[]> carried = datagrams(Integer.parseInt(w[7]));
        Listener l = daemon.registry().get(key);
        if (l == null || !(l.target() instanceof UdpRoute route)) {
            log.info("upgrade: dropping flow {} of {}: listener no longer configured", Addresses.format(client), key);
            Fds.close(fd);
            return;
        }
        Channel socket = l.sockets().get(index % l.sockets().size());
        UdpListenerHandler handler = socket.pipeline().get(UdpListenerHandler.class);
        Fds.setNonBlocking(fd);
        Channel channel = daemon.transport().adoptDatagramChannel(fd);
        UdpFlow.Snapshot s = new UdpFlow.Snapshot(Wire.dec(w[3]), client, upstream, fd, toUpstream, carried);
        socket.eventLoop().execute(() -> UdpFlow.adopt(route.proxy(), handler, channel, s));
    }

    private java.util.List<byte[]> datagrams(int count) throws IOException {
        java.util.List<byte[]> out = new java.util.ArrayList<>();
        for (int i = 0; i < count; i++) {
            HandoffSocket.Message m = link.receive();
            if (m == null) {
                throw new IOException("predecessor went away in the middle of a flow");
            }
            out.add(m.bytes());
        }
        return out;
    }

    @Override
    public void close() {
        link.close();
    }
}
