package dev.baton.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32;

/**
 * A TCP and a UDP server on one address and port that say who they are: TCP writes "NAME\n" and
 * then echoes until EOF; UDP answers each datagram with "NAME:" and the datagram. Both sockets are
 * made in the constructor on the calling thread, so a thread inside a network namespace makes
 * them there.
 */
public final class NamedBackend implements AutoCloseable {
    private final String name;
    private final ServerSocket tcp;
    private final DatagramSocket udp;
    private final List<Socket> accepted = new CopyOnWriteArrayList<>();

    public NamedBackend(String name, InetAddress address, int port) throws IOException {
        this.name = name;
        ServerSocket t = null;
        DatagramSocket u = null;
        for (int attempt = 0; u == null; attempt++) {
            int p = port != 0 ? port : ThreadLocalRandom.current().nextInt(20000, 32000);
            try {
                t = new ServerSocket(p, 200, address);
                u = new DatagramSocket(new InetSocketAddress(address, p));
            } catch (IOException e) {
                if (t != null) {
                    t.close();
                }
                if (port != 0 || attempt > 100) {
                    throw e;
                }
            }
        }
        this.tcp = t;
        this.udp = u;
        daemon("backend-" + name + "-tcp", this::acceptLoop);
        daemon("backend-" + name + "-udp", this::udpLoop);
    }

    private static void daemon(String name, Runnable r) {
        Thread th = new Thread(r, name);
        th.setDaemon(true);
        th.start();
    }

    public int port() {
        return tcp.getLocalPort();
    }

    private void acceptLoop() {
        while (!tcp.isClosed()) {
            try {
                Socket s = tcp.accept();
                accepted.add(s);
                daemon("backend-" + name + "-conn", () -> {
                    try (s) {
                        OutputStream out = s.getOutputStream();
                        out.write((name + "\n").getBytes(StandardCharsets.UTF_8));
                        InputStream in = s.getInputStream();
                        byte[] buf = new byte[65536];
                        int n;
                        while ((n = in.read(buf)) >= 0) {
                            out.write(buf, 0, n);
                        }
                        s.shutdownOutput();
                    } catch (IOException ignored) {
                        // the client decides what a failure means
                    }
                });
            } catch (IOException e) {
                return;
            }
        }
    }

    private void udpLoop() {
        byte[] buf = new byte[65536];
        byte[] prefix = (name + ":").getBytes(StandardCharsets.UTF_8);
        while (!udp.isClosed()) {
            try {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                udp.receive(p);
                byte[] reply = new byte[prefix.length + p.getLength()];
                System.arraycopy(prefix, 0, reply, 0, prefix.length);
                System.arraycopy(p.getData(), p.getOffset(), reply, prefix.length, p.getLength());
                udp.send(new DatagramPacket(reply, reply.length, p.getSocketAddress()));
            } catch (IOException e) {
                return;
            }
        }
    }

    /**
     * Connects over TCP (the socket made on the calling thread), sends {@code bytes} random bytes
     * and half-closes; returns the name the backend gave, after checking that the echo came back
     * whole (CRC32).
     */
    public static String tcpName(SocketAddress to, int bytes) throws IOException {
        byte[] data = new byte[bytes];
        ThreadLocalRandom.current().nextBytes(data);
        try (Socket s = new Socket()) {
            s.connect(to, 5000);
            s.setSoTimeout(10_000);
            Thread writer = new Thread(() -> {
                try {
                    s.getOutputStream().write(data);
                    s.shutdownOutput();
                } catch (IOException ignored) {
                    // the reader sees the short echo
                }
            }, "tcp-writer");
            writer.start();
            byte[] all = s.getInputStream().readAllBytes();
            int nl = indexOf(all, (byte) '\n');
            if (nl < 0) {
                throw new IOException("no name line from " + to + " (" + all.length + " bytes)");
            }
            String name = new String(all, 0, nl, StandardCharsets.UTF_8);
            byte[] echo = java.util.Arrays.copyOfRange(all, nl + 1, all.length);
            if (echo.length != data.length || crc(echo) != crc(data)) {
                throw new IOException(name + " via " + to + ": echoed " + echo.length + " of " + data.length
                        + " bytes, crc " + Long.toHexString(crc(echo)) + " vs " + Long.toHexString(crc(data)));
            }
            return name;
        }
    }

    /** Sends one datagram from {@code client} and returns the name in the reply, checking the payload. */
    public static String udpName(DatagramSocket client, SocketAddress to) throws IOException {
        byte[] data = new byte[512];
        ThreadLocalRandom.current().nextBytes(data);
        client.setSoTimeout(5000);
        client.send(new DatagramPacket(data, data.length, to));
        DatagramPacket r = new DatagramPacket(new byte[2048], 2048);
        client.receive(r);
        byte[] got = java.util.Arrays.copyOfRange(r.getData(), r.getOffset(), r.getOffset() + r.getLength());
        int colon = indexOf(got, (byte) ':');
        byte[] echo = java.util.Arrays.copyOfRange(got, colon + 1, got.length);
        if (colon < 0 || !java.util.Arrays.equals(echo, data)) {
            throw new IOException("bad UDP reply via " + to);
        }
        return new String(got, 0, colon, StandardCharsets.UTF_8);
    }

    private static int indexOf(byte[] a, byte b) {
        for (int i = 0; i < a.length; i++) {
            if (a[i] == b) {
                return i;
            }
        }
        return -1;
    }

    private static long crc(byte[] b) {
        CRC32 c = new CRC32();
        c.update(b);
        return c.getValue();
    }

    @Override
    public void close() throws IOException {
        tcp.close();
        udp.close();
        for (Socket s : accepted) {
            s.close();
        }
    }
}
