package dev.baton.handoff;

import dev.baton.os.Fds;
import jnr.posix.FileStat;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertNull;

class HandoffSocketTest {

    /**
     * Every message arrives with its descriptors, which name the same open files, while the
     * garbage collector runs flat out next door (it once freed the control buffer of a blocked
     * recvmsg; the message then seemed to arrive without its descriptors).
     */
    @Test
    void descriptorsSurviveGarbageCollectionDuringBlockedReceive() throws Exception {
        int[] pair = HandoffSocket.pair();
        int[] pipe = new int[2];
        assertEquals(0, Fds.posix().pipe(pipe));
        long[] inodes = {inode(pipe[0]), inode(pipe[1])};
        int messages = 20_000;
        AtomicBoolean done = new AtomicBoolean();
        Thread churn = new Thread(() -> {
            List<byte[]> keep = new ArrayList<>();
            while (!done.get()) {
                for (int i = 0; i < 1000; i++) {
                    keep.add(new byte[256]);
                }
                keep.clear();
                System.gc();
            }
        });
        churn.start();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        int[] received = new int[1];
        HandoffSocket a = new HandoffSocket(pair[0]);
        HandoffSocket b = new HandoffSocket(pair[1]);
        try {
            Thread receiver = new Thread(() -> {
                try {
                    for (int i = 0; i < messages; i++) {
                        HandoffSocket.Message m = b.receive();
                        assertEquals("TCP " + i, m.text());
                        assertEquals(2, m.fds().length, "descriptors of message " + i);
                        assertArrayEquals(inodes, new long[] {inode(m.fds()[0]), inode(m.fds()[1])});
                        Fds.posix().close(m.fds()[0]);
                        Fds.posix().close(m.fds()[1]);
                        received[0]++;
                    }
                    assertNull(b.receive(), "end of stream after the sender closed");
                } catch (Throwable t) {
                    failure.set(t);
                } finally {
                    b.close(); // a sender blocked on a full socket fails instead of hanging
                }
            });
            receiver.start();
            for (int i = 0; i < messages; i++) {
                // pause now and then so the receiver blocks in recvmsg while the GC runs
                if (i % 500 == 0) {
                    Thread.sleep(2);
                }
                try {
                    a.send("TCP " + i, pipe[0], pipe[1]);
                } catch (java.io.IOException e) {
                    break; // the receiver gave up; its failure is reported below
                }
            }
            a.close();
            receiver.join(60_000);
        } finally {
            done.set(true);
            churn.join();
            Fds.posix().close(pipe[0]);
            Fds.posix().close(pipe[1]);
        }
        if (failure.get() != null) {
            throw new AssertionError("after " + received[0] + " messages", failure.get());
        }
        assertEquals(messages, received[0]);
    }

    @Test
    void largeMessagesArriveWhole() throws Exception {
        int[] pair = HandoffSocket.pair();
        try (HandoffSocket a = new HandoffSocket(pair[0]); HandoffSocket b = new HandoffSocket(pair[1])) {
            byte[] big = new byte[HandoffSocket.MAX_MESSAGE];
            for (int i = 0; i < big.length; i++) {
                big[i] = (byte) (i * 31);
            }
            a.send(big);
            a.send("after");
            assertArrayEquals(big, b.receive().bytes());
            assertEquals("after", b.receive().text());
        }
    }

    @Test
    void awaitTellsWhetherAMessageCameInTime() throws Exception {
        int[] pair = HandoffSocket.pair();
        try (HandoffSocket a = new HandoffSocket(pair[0]); HandoffSocket b = new HandoffSocket(pair[1])) {
            assertFalse(b.await(50), "nothing sent yet");
            a.send("TAKEN 1 2");
            assertTrue(b.await(5000));
            assertEquals("TAKEN 1 2", b.receive().text());
            assertFalse(b.await(0));
        }
    }

    private static long inode(int fd) {
        FileStat st = Fds.posix().fstat(fd);
        return st.ino();
    }
}
