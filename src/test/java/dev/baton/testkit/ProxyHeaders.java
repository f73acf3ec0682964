package dev.baton.testkit;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * PROXY protocol headers parsed by hand, the way a backend would, independently of the codec
 * baton uses to write them.
 */
public final class ProxyHeaders {
    public static final byte[] V2_SIGNATURE = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

    private ProxyHeaders() {
    }

    /**
     * One header: version 1 or 2, command PROXY or LOCAL, protocol TCP4, TCP6, UDP4, UDP6 or
     * UNKNOWN, the addresses (null for UNKNOWN and LOCAL), and its length in bytes.
     */
    public record Header(int version, String command, String protocol, InetSocketAddress source,
                         InetSocketAddress destination, int length) {
    }

    /** Reads exactly one header from the start of a stream. */
    public static Header read(InputStream in) throws IOException {
        byte[] first = readFully(in, 12);
        if (Arrays.equals(first, V2_SIGNATURE)) {
            byte[] fixed = readFully(in, 4);
            int len = ((fixed[2] & 0xff) << 8) | (fixed[3] & 0xff);
            ByteBuffer all = ByteBuffer.allocate(16 + len).put(first).put(fixed).put(readFully(in, len)).flip();
            return v2(all);
        }
        StringBuilder line = new StringBuilder(new String(first, StandardCharsets.US_ASCII));
        while (!line.toString().endsWith("\r\n")) {
            int c = in.read();
            if (c < 0) {
                throw new EOFException("stream ended inside a v1 header: " + line);
            }
            line.append((char) c);
            if (line.length() > 107) {
                throw new IOException("v1 header longer than 107 bytes: " + line);
            }
        }
        return v1(line.toString());
    }

    /** The header at the start of a datagram (its payload follows at {@code length()}). */
    public static Header parse(byte[] datagram, int length) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(datagram, 0, length);
        byte[] sig = new byte[12];
        if (length < 16) {
            throw new IOException("datagram of " + length + " bytes has no v2 header");
        }
        b.get(sig);
        b.rewind();
        if (!Arrays.equals(sig, V2_SIGNATURE)) {
            throw new IOException("datagram does not start with the v2 signature");
        }
        return v2(b);
    }

    private static Header v2(ByteBuffer b) throws IOException {
        b.position(12);
        int verCmd = b.get() & 0xff;
        int famProto = b.get() & 0xff;
        int len = b.getShort() & 0xffff;
        if (b.remaining() < len) {
            throw new IOException("v2 header says " + len + " address bytes, only " + b.remaining() + " there");
        }
        if ((verCmd >> 4) != 2) {
            throw new IOException("v2 header with version nibble " + (verCmd >> 4));
        }
        String command = switch (verCmd & 0x0f) {
            case 0 -> "LOCAL";
            case 1 -> "PROXY";
            default -> throw new IOException("v2 header with command " + (verCmd & 0x0f));
        };
        int family = famProto >> 4;
        int transport = famProto & 0x0f;
        int total = 16 + len;
        if (family == 0) {
            return new Header(2, command, "UNKNOWN", null, null, total);
        }
        String proto = (transport == 1 ? "TCP" : transport == 2 ? "UDP" : "?" + transport)
                + (family == 1 ? "4" : family == 2 ? "6" : "?" + family);
        int size = family == 1 ? 4 : family == 2 ? 16 : -1;
        if (size < 0 || len < 2 * size + 4) {
            throw new IOException("v2 header " + proto + " with " + len + " address bytes");
        }
        byte[] src = new byte[size];
        byte[] dst = new byte[size];
        b.get(src).get(dst);
        int sport = b.getShort() & 0xffff;
        int dport = b.getShort() & 0xffff;
        return new Header(2, command, proto, new InetSocketAddress(InetAddress.getByAddress(src), sport),
                new InetSocketAddress(InetAddress.getByAddress(dst), dport), total);
    }

    private static Header v1(String line) throws IOException {
        String[] w = line.substring(0, line.length() - 2).split(" ", -1);
        if (!w[0].equals("PROXY")) {
            throw new IOException("v1 header does not start with PROXY: " + line);
        }
        if (w.length == 2 && w[1].equals("UNKNOWN")) {
            return new Header(1, "PROXY", "UNKNOWN", null, null, line.length());
        }
        if (w.length != 6 || !(w[1].equals("TCP4") || w[1].equals("TCP6"))) {
            throw new IOException("malformed v1 header: " + line);
        }
        return new Header(1, "PROXY", w[1], new InetSocketAddress(literal(w[2]), Integer.parseInt(w[4])),
                new InetSocketAddress(literal(w[3]), Integer.parseInt(w[5])), line.length());
    }

    private static InetAddress literal(String s) throws IOException {
        if (!s.matches("[0-9a-fA-F:.]+")) {
            throw new IOException("not an address literal: " + s);
        }
        return InetAddress.getByName(s);
    }

    private static byte[] readFully(InputStream in, int n) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new EOFException("stream ended after " + b.length + " of " + n + " header bytes");
        }
        return b;
    }

    /** A v2 header as a sender writes it, built by hand (for tests that play a trusted load balancer). */
    public static byte[] v2(boolean stream, InetSocketAddress source, InetSocketAddress destination) {
        byte[] s = source.getAddress().getAddress();
        byte[] d = destination.getAddress().getAddress();
        int family = s.length == 4 ? 1 : 2;
        ByteBuffer b = ByteBuffer.allocate(16 + 2 * s.length + 4);
        b.put(V2_SIGNATURE).put((byte) 0x21).put((byte) ((family << 4) | (stream ? 1 : 2)))
                .putShort((short) (2 * s.length + 4)).put(s).put(d)
                .putShort((short) source.getPort()).putShort((short) destination.getPort());
        return b.array();
    }
}
