package dev.baton.handoff;

import dev.baton.os.Fds;
import jnr.constants.platform.AddressFamily;
import jnr.constants.platform.Sock;
import jnr.posix.CmsgHdr;
import jnr.posix.MsgHdr;
import jnr.posix.POSIX;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One end of the predecessor-successor link: a SOCK_SEQPACKET unix socket pair, so every message
 * arrives whole, with the file descriptors it carries (SCM_RIGHTS). Blocking; used only by the
 * control thread of each process.
 */
public final class HandoffSocket implements AutoCloseable {
    /** Largest message; larger payloads are split by the caller. */
    public static final int MAX_MESSAGE = 60 * 1024;
    /** Descriptors per message (the kernel allows 253). */
    public static final int MAX_FDS = 64;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;

    private final POSIX posix = Fds.posix();
    private final int fd;
    private final ByteBuffer receiveBuffer = ByteBuffer.allocateDirect(MAX_MESSAGE);

    public HandoffSocket(int fd) {
        this.fd = fd;
    }

    public int fd() {
        return fd;
    }

    /** A connected pair: [0] stays here, [1] goes to the successor. */
    public static int[] pair() throws IOException {
        int[] sv = new int[2];
        int type = Sock.SOCK_SEQPACKET.intValue() | 0x80000; // SOCK_CLOEXEC
        if (Fds.posix().socketpair(AddressFamily.AF_UNIX.intValue(), type, 0, sv) != 0) {
            throw new IOException("socketpair failed: errno " + Fds.posix().errno());
        }
        return sv;
    }

    /** A received message: its text, raw bytes and descriptors. */
    public record Message(byte[] bytes, int[] fds) {
        public String text() {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    }

    public void send(String text, int... fds) throws IOException {
        send(text.getBytes(StandardCharsets.UTF_8), fds);
    }

    public void send(byte[] payload, int... fds) throws IOException {
        if (payload.length > MAX_MESSAGE) {
            throw new IllegalArgumentException("message too large: " + payload.length);
        }
        MsgHdr msg = posix.allocateMsgHdr();
        ByteBuffer data = ByteBuffer.allocateDirect(Math.max(1, payload.length));
        data.put(payload).flip();
        msg.setIov(new ByteBuffer[] {data});
        if (fds.length > 0) {
            CmsgHdr c = msg.allocateControl(4 * fds.length);
            c.setLevel(SOL_SOCKET);
            c.setType(SCM_RIGHTS);
            ByteBuffer b = ByteBuffer.allocate(4 * fds.length).order(ByteOrder.nativeOrder());
            for (int f : fds) {
                b.putInt(f);
            }
            b.flip();
            c.setData(b);
        }
        int n;
        do {
            n = posix.sendmsg(fd, msg, 0);
        } while (n < 0 && posix.errno() == 4); // EINTR
        if (n < 0) {
            throw new IOException("handoff send failed: errno " + posix.errno());
        }
    }

    /** Blocks for the next message; null when the other side has closed. */
    public Message receive() throws IOException {
        MsgHdr msg = posix.allocateMsgHdr();
        receiveBuffer.clear();
        msg.setIov(new ByteBuffer[] {receiveBuffer});
        msg.allocateControl(4 * MAX_FDS);
        int n;
        do {
            n = posix.recvmsg(fd, msg, 0x40000000); // MSG_CMSG_CLOEXEC
        } while (n < 0 && posix.errno() == 4);
        if (n < 0) {
            throw new IOException("handoff receive failed: errno " + posix.errno());
        }
        if (n == 0 && msg.getControlLen() == 0) {
            return null;
        }
        int[] fds = new int[0];
        for (CmsgHdr c : msg.getControls()) {
            if (c.getLevel() == SOL_SOCKET && c.getType() == SCM_RIGHTS) {
                ByteBuffer b = c.getData().order(ByteOrder.nativeOrder());
                int count = b.remaining() / 4;
                int[] more = new int[fds.length + count];
                System.arraycopy(fds, 0, more, 0, fds.length);
                for (int i = 0; i < count; i++) {
                    more[fds.length + i] = b.getInt();
                }
                fds = more;
            }
        }
        byte[] bytes = new byte[n];
        ByteBuffer view = msg.getIov()[0].duplicate();
        view.position(0).limit(n);
        view.get(bytes);
        return new Message(bytes, fds);
    }

    @Override
    public void close() {
        posix.close(fd);
    }
}
