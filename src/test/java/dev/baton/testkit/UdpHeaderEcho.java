package dev.baton.testkit;

import dev.baton.testkit.ProxyHeaders.Header;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A UDP backend behind a proxy that sends PROXY v2 headers: parses the header of every datagram by
 * hand, records it with the payload after it and the datagram's sender, and answers with the payload.
 */
public final class UdpHeaderEcho implements AutoCloseable {
    /** What one datagram brought: its header, the payload after it, the whole datagram, and who sent it. */
    public record Received(Header header, byte[] payload, byte[] raw, InetSocketAddress sender) {
    }

    /** A {@link Received}, or a String saying why a datagram had no header. */
    public final BlockingQueue<Object> received = new LinkedBlockingQueue<>();
    private final DatagramSocket socket;

    public UdpHeaderEcho() throws IOException {
        socket = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
        socket.setReceiveBufferSize(1 << 20);
        Thread th = new Thread(() -> {
            byte[] buf = new byte[65536];
            while (!socket.isClosed()) {
                try {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    socket.receive(p);
                    byte[] raw = Arrays.copyOf(p.getData(), p.getLength());
                    Header h;
                    try {
                        h = ProxyHeaders.parse(raw, raw.length);
                    } catch (IOException e) {
                        received.add("bad datagram: " + e.getMessage());
                        continue;
                    }
                    byte[] payload = Arrays.copyOfRange(raw, h.length(), raw.length);
                    received.add(new Received(h, payload, raw, (InetSocketAddress) p.getSocketAddress()));
                    socket.send(new DatagramPacket(payload, payload.length, p.getSocketAddress()));
                } catch (IOException e) {
                    return;
                }
            }
        }, "udp-header-echo");
        th.setDaemon(true);
        th.start();
    }

    public int port() {
        return socket.getLocalPort();
    }

    /** The next datagram (waits up to 10 s); fails if it had no header. */
    public Received next() throws InterruptedException {
        Object r = received.poll(10, TimeUnit.SECONDS);
        if (!(r instanceof Received got)) {
            throw new AssertionError(r == null ? "the backend got no datagram" : String.valueOf(r));
        }
        return got;
    }

    @Override
    public void close() {
        socket.close();
    }
}
