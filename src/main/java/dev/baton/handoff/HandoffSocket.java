package dev.baton.handoff;

import dev.baton.os.Fds;
import jnr.constants.platform.AddressFamily;
import jnr.constants.platform.Sock;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

import java.io.IOException;
import java.lang.ref.Reference;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One end of the predecessor-successor link: a SOCK_SEQPACKET unix socket pair, so every message
 * arrives whole, with the file descriptors it carries (SCM_RIGHTS). Blocking; used only by the
 * control thread of each process.
 *
 * <p>sendmsg/recvmsg are called with a msghdr, iovec, payload and control buffer that this object
 * allocates once and keeps for its life. (jnr-posix's MsgHdr keeps its control and iovec memory
 * reachable only through the native struct, so the GC may free it during a blocking recvmsg; the
 * kernel then writes the received descriptors into freed memory and the message seems to arrive
 * without them.) A message whose descriptors the kernel had to drop (MSG_CTRUNC: the receiver is
 * out of descriptors) arrives with none, so the receiver sees the loss and can skip that one socket.
 */
public final class HandoffSocket implements AutoCloseable {
    /** Largest message; larger payloads are split by the caller. */
    public static final int MAX_MESSAGE = 60 * 1024;
    /** Descriptors per message (the kernel allows 253). */
    public static final int MAX_FDS = 64;

    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_TRUNC = 0x20;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int EINTR = 4;

    // struct msghdr and struct cmsghdr on 64-bit Linux (glibc and musl agree).
    private static final int MSG_IOV = 16;
    private static final int MSG_IOVLEN = 24;
    private static final int MSG_CONTROL = 32;
    private static final int MSG_CONTROLLEN = 40;
    private static final int MSG_FLAGS = 48;
    private static final int MSGHDR_SIZE = 56;
    private static final int IOVEC_SIZE = 16;
    private static final int CMSG_HEADER = 16;
    private static final int CONTROL_SIZE = CMSG_HEADER + 4 * MAX_FDS;

    /** The two calls, with plain pointers to memory this class owns. */
    public interface Calls {
        long sendmsg(int fd, Pointer msg, int flags);

        long recvmsg(int fd, Pointer msg, int flags);

        int poll(Pointer fds, long nfds, int timeout);
    }

    private static final Calls LIBC = LibraryLoader.create(Calls.class).load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

    static {
        if (RUNTIME.addressSize() != 8) {
            throw new ExceptionInInitializerError("the handoff link needs a 64-bit Linux");
        }
    }

    private final int fd;
    private final Buffers out = new Buffers();
    private final Buffers in = new Buffers();

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
        if (fds.length > MAX_FDS) {
            throw new IllegalArgumentException("too many descriptors in one message: " + fds.length);
        }
        synchronized (out) {
            out.data.put(0, payload, 0, payload.length);
            out.prepare(payload.length, fds.length == 0 ? 0 : CMSG_HEADER + align(4 * fds.length));
            if (fds.length > 0) {
                out.control.putLong(0, CMSG_HEADER + 4L * fds.length);
                out.control.putInt(8, SOL_SOCKET);
                out.control.putInt(12, SCM_RIGHTS);
                for (int i = 0; i < fds.length; i++) {
                    out.control.putInt(CMSG_HEADER + 4L * i, fds[i]);
                }
            }
            long n;
            do {
                n = LIBC.sendmsg(fd, out.msg, MSG_NOSIGNAL);
            } while (n < 0 && RUNTIME.getLastError() == EINTR);
            int errno = RUNTIME.getLastError();
            Reference.reachabilityFence(out);
            if (n < 0) {
                throw new IOException("handoff send failed: errno " + errno);
            }
            if (n != payload.length) {
                throw new IOException("handoff send wrote " + n + " of " + payload.length + " bytes");
            }
        }
    }

    /**
     * Waits at most {@code millis} for the next message (or the other side closing) to be ready;
     * false on timeout.
     */
    public boolean await(int millis) throws IOException {
        synchronized (in) {
            Pointer pfd = in.pollfd;
            pfd.putInt(0, fd);
            pfd.putInt(4, 0x1); // events = POLLIN; revents = 0
            long deadline = System.nanoTime() + millis * 1_000_000L;
            while (true) {
                int left = (int) Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
                int n = LIBC.poll(pfd, 1, left);
                int errno = RUNTIME.getLastError();
                Reference.reachabilityFence(in);
                if (n > 0) {
                    return true;
                }
                if (n == 0) {
                    return false;
                }
                if (errno != EINTR) {
                    throw new IOException("handoff poll failed: errno " + errno);
                }
            }
        }
    }

    /** Blocks for the next message; null when the other side has closed. */
    public Message receive() throws IOException {
        synchronized (in) {
            in.prepare(MAX_MESSAGE, CONTROL_SIZE);
            long n;
            do {
                n = LIBC.recvmsg(fd, in.msg, MSG_CMSG_CLOEXEC);
            } while (n < 0 && RUNTIME.getLastError() == EINTR);
            int errno = RUNTIME.getLastError();
            try {
                if (n < 0) {
                    throw new IOException("handoff receive failed: errno " + errno);
                }
                int[] fds = descriptors(in.control, in.msg.getLong(MSG_CONTROLLEN));
                int flags = in.msg.getInt(MSG_FLAGS);
                if ((flags & MSG_TRUNC) != 0) {
                    closeAll(fds);
                    throw new IOException("handoff message truncated (MSG_TRUNC)");
                }
                if ((flags & MSG_CTRUNC) != 0) {
                    // The kernel dropped some descriptors (this process is out of them): deliver the
                    // message with none, so the receiver loses that one socket, visibly, not more.
                    closeAll(fds);
                    fds = new int[0];
                }
                if (n == 0 && fds.length == 0) {
                    return null;
                }
                byte[] bytes = new byte[(int) n];
                in.data.get(0, bytes, 0, bytes.length);
                return new Message(bytes, fds);
            } finally {
                Reference.reachabilityFence(in);
            }
        }
    }

    private static void closeAll(int[] fds) {
        for (int f : fds) {
            Fds.posix().close(f);
        }
    }

    /** The descriptors of every SCM_RIGHTS message in a control buffer of {@code length} bytes. */
    private static int[] descriptors(Pointer control, long length) {
        int[] fds = new int[0];
        long offset = 0;
        while (offset + CMSG_HEADER <= length) {
            long len = control.getLong(offset);
            if (len < CMSG_HEADER || offset + len > length) {
                break;
            }
            if (control.getInt(offset + 8) == SOL_SOCKET && control.getInt(offset + 12) == SCM_RIGHTS) {
                int count = (int) ((len - CMSG_HEADER) / 4);
                int base = fds.length;
                fds = Arrays.copyOf(fds, base + count);
                for (int i = 0; i < count; i++) {
                    fds[base + i] = control.getInt(offset + CMSG_HEADER + 4L * i);
                }
            }
            offset += align(len);
        }
        return fds;
    }

    private static long align(long n) {
        return (n + 7) & ~7L;
    }

    private static int align(int n) {
        return (n + 7) & ~7;
    }

    /** Native memory for one direction, owned (and kept reachable) by this socket. */
    private static final class Buffers {
        final Pointer msg = Memory.allocateDirect(RUNTIME, MSGHDR_SIZE, true);
        final Pointer iov = Memory.allocateDirect(RUNTIME, IOVEC_SIZE, true);
        final Pointer data = Memory.allocateDirect(RUNTIME, MAX_MESSAGE, true);
        final Pointer control = Memory.allocateDirect(RUNTIME, CONTROL_SIZE, true);
        final Pointer pollfd = Memory.allocateDirect(RUNTIME, 8, true);

        /** A msghdr for {@code length} payload bytes and {@code controlLength} control bytes. */
        void prepare(int length, int controlLength) {
            iov.putAddress(0, data.address());
            iov.putLong(8, length);
            msg.setMemory(0, MSGHDR_SIZE, (byte) 0);
            msg.putAddress(MSG_IOV, iov.address());
            msg.putLong(MSG_IOVLEN, 1);
            msg.putAddress(MSG_CONTROL, controlLength == 0 ? 0 : control.address());
            msg.putLong(MSG_CONTROLLEN, controlLength);
            control.setMemory(0, CONTROL_SIZE, (byte) 0);
        }
    }

    @Override
    public void close() {
        Fds.posix().close(fd);
    }
}
