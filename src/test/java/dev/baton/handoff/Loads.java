package dev.baton.handoff;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/** Upstreams and client loads for the upgrade tests: real sockets on loopback, counted exactly. */
public final class Loads {
    private Loads() {
    }

    /** A TCP echo server, one thread per connection. */
    public static final class TcpEcho implements AutoCloseable {
        final ServerSocket server;
        private final Set<Socket> open = ConcurrentHashMap.newKeySet();

        TcpEcho() throws IOException {
            server = new ServerSocket();
            server.bind(new InetSocketAddress("127.0.0.1", 0), 1024);
            Thread t = new Thread(this::acceptLoop, "tcp-echo");
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return server.getLocalPort();
        }

        private void acceptLoop() {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    open.add(s);
                    Thread t = new Thread(() -> echo(s), "tcp-echo-conn");
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }

        private void echo(Socket s) {
            byte[] buf = new byte[16384];
            try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                int n;
                while ((n = in.read(buf)) > 0) {
                    out.write(buf, 0, n);
                }
            } catch (IOException ignored) {
                // peer went away
            } finally {
                open.remove(s);
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : open) {
                s.close();
            }
        }
    }

    /** A UDP echo server that records every source address it saw per flow (flow id = first 4 bytes). */
    public static final class UdpEcho implements AutoCloseable {
        final DatagramSocket socket;
        final Map<Integer, Set<SocketAddress>> sources = new ConcurrentHashMap<>();
        final AtomicLong received = new AtomicLong();

        UdpEcho() throws IOException {
            socket = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
            socket.setReceiveBufferSize(4 << 20);
            Thread t = new Thread(this::loop, "udp-echo");
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return socket.getLocalPort();
        }

        private void loop() {
            byte[] buf = new byte[2048];
            while (!socket.isClosed()) {
                try {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    socket.receive(p);
                    received.incrementAndGet();
                    if (p.getLength() >= 4) {
                        int flow = ByteBuffer.wrap(buf, 0, 4).getInt();
                        sources.computeIfAbsent(flow, k -> ConcurrentHashMap.newKeySet()).add(p.getSocketAddress());
                    }
                    socket.send(new DatagramPacket(buf, p.getLength(), p.getSocketAddress()));
                } catch (IOException e) {
                    return;
                }
            }
        }

        @Override
        public void close() {
            socket.close();
        }
    }

    /** Short connections as fast as {@code threads} clients can make them: connect, 32 bytes each way, close. */
    public static final class ShortConnections implements AutoCloseable {
        final AtomicLong ok = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final List<String> errors = new ArrayList<>();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final List<Thread> threads = new ArrayList<>();

        ShortConnections(int port, int threads) {
            for (int i = 0; i < threads; i++) {
                int id = i;
                Thread t = new Thread(() -> run(port, id), "short-" + i);
                t.start();
                this.threads.add(t);
            }
        }

        private void run(int port, int id) {
            byte[] req = new byte[32];
            byte[] resp = new byte[32];
            long n = 0;
            while (running.get()) {
                ByteBuffer.wrap(req).putInt(id).putLong(n++);
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
                    s.setSoTimeout(10000);
                    s.getOutputStream().write(req);
                    readFully(s.getInputStream(), resp);
                    if (!Arrays.equals(req, resp)) {
                        throw new IOException("wrong bytes");
                    }
                    ok.incrementAndGet();
                } catch (IOException e) {
                    failed.incrementAndGet();
                    synchronized (errors) {
                        if (errors.size() < 20) {
                            errors.add(e.toString());
                        }
                    }
                }
            }
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            for (Thread t : threads) {
                t.join(20000);
            }
        }
    }

    /** Long-lived streams that exchange pseudo-random data without pause and verify every echoed byte. */
    public static final class Streams implements AutoCloseable {
        final AtomicLong bytes = new AtomicLong();
        final AtomicLong broken = new AtomicLong();
        final List<String> errors = new ArrayList<>();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final List<Thread> threads = new ArrayList<>();
        private final List<Socket> sockets = new ArrayList<>();

        Streams(int port, int count) throws IOException {
            for (int i = 0; i < count; i++) {
                Socket s = new Socket();
                s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
                s.setSoTimeout(15000);
                sockets.add(s);
                long seed = 1000 + i;
                Thread w = new Thread(() -> write(s, seed), "stream-w-" + i);
                Thread r = new Thread(() -> read(s, seed), "stream-r-" + i);
                w.start();
                r.start();
                threads.add(w);
                threads.add(r);
            }
        }

        private void write(Socket s, long seed) {
            Random rnd = new Random(seed);
            byte[] chunk = new byte[1024];
            try {
                OutputStream out = s.getOutputStream();
                while (running.get()) {
                    rnd.nextBytes(chunk);
                    out.write(chunk);
                    Thread.sleep(10);
                }
                s.shutdownOutput();
            } catch (IOException e) {
                fail("write: " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private void read(Socket s, long seed) {
            Random rnd = new Random(seed);
            byte[] expected = new byte[1024];
            byte[] got = new byte[1024];
            try {
                InputStream in = s.getInputStream();
                int pos = 1024;
                int n;
                while ((n = in.read(got)) > 0) {
                    for (int i = 0; i < n; i++) {
                        if (pos == 1024) {
                            rnd.nextBytes(expected);
                            pos = 0;
                        }
                        if (got[i] != expected[pos++]) {
                            fail("corrupted byte after " + bytes.get() + " bytes");
                            return;
                        }
                    }
                    bytes.addAndGet(n);
                }
                if (running.get()) {
                    fail("stream ended early");
                }
            } catch (SocketTimeoutException e) {
                fail("stalled for 15 s");
            } catch (IOException e) {
                fail("read: " + e);
            }
        }

        private void fail(String why) {
            broken.incrementAndGet();
            synchronized (errors) {
                if (errors.size() < 20) {
                    errors.add(why);
                }
            }
        }

        @Override
        public void close() throws Exception {
            running.set(false);
            for (Thread t : threads) {
                t.join(20000);
            }
            for (Socket s : sockets) {
                s.close();
            }
        }
    }

    /** {@code flows} UDP clients sending {@code rate} datagrams/s in total, each numbered; counts what comes back. */
    public static final class UdpFlows implements AutoCloseable {
        final AtomicLong sent = new AtomicLong();
        final AtomicLong received = new AtomicLong();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final List<DatagramSocket> sockets = new ArrayList<>();
        private final List<Thread> threads = new ArrayList<>();
        private final Set<Long> answered = ConcurrentHashMap.newKeySet();

        UdpFlows(int port, int flows, int rate) throws IOException {
            InetSocketAddress target = new InetSocketAddress("127.0.0.1", port);
            for (int i = 0; i < flows; i++) {
                DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
                s.setSoTimeout(200);
                s.setReceiveBufferSize(1 << 20);
                sockets.add(s);
                Thread r = new Thread(() -> receive(s), "udp-r-" + i);
                r.start();
                threads.add(r);
            }
            Thread sender = new Thread(() -> send(target, rate), "udp-send");
            sender.start();
            threads.add(sender);
        }

        private void send(InetSocketAddress target, int rate) {
            long interval = 1_000_000_000L / rate;
            long next = System.nanoTime();
            long seq = 0;
            byte[] buf = new byte[64];
            while (running.get()) {
                int flow = (int) (seq % sockets.size());
                ByteBuffer.wrap(buf).putInt(flow).putLong(seq);
                try {
                    sockets.get(flow).send(new DatagramPacket(buf, buf.length, target));
                    sent.incrementAndGet();
                } catch (IOException e) {
                    return;
                }
                seq++;
                next += interval;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    java.util.concurrent.locks.LockSupport.parkNanos(wait);
                }
            }
        }

        private void receive(DatagramSocket s) {
            byte[] buf = new byte[2048];
            while (running.get() || received.get() < sent.get()) {
                try {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    s.receive(p);
                    long seq = ByteBuffer.wrap(buf, 4, 8).getLong();
                    if (answered.add(seq)) {
                        received.incrementAndGet();
                    }
                } catch (SocketTimeoutException e) {
                    if (!running.get()) {
                        return;
                    }
                } catch (IOException e) {
                    return;
                }
            }
        }

        long lost() {
            return sent.get() - received.get();
        }

        /** Stops sending; waits up to two seconds for the last answers. */
        @Override
        public void close() throws InterruptedException {
            running.set(false);
            for (Thread t : threads) {
                t.join(5000);
            }
            for (DatagramSocket s : sockets) {
                s.close();
            }
        }
    }

    static void readFully(InputStream in, byte[] b) throws IOException {
        int off = 0;
        while (off < b.length) {
            int n = in.read(b, off, b.length - off);
            if (n < 0) {
                throw new IOException("EOF after " + off + " bytes");
            }
            off += n;
        }
    }
}
