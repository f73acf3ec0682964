package dev.baton.testkit;

import ch.qos.logback.classic.Logger;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The leak check itself: a buffer dropped without release is reported and counted. */
class NoBufferLeaksTest {
    @Test
    void aBufferDroppedWithoutReleaseIsCounted() throws InterruptedException {
        assertEquals(ResourceLeakDetector.Level.PARANOID, ResourceLeakDetector.getLevel(),
                "the build runs the tests with -Dio.netty.leakDetection.level=paranoid");
        // The report of this leak made on purpose is counted but kept out of the console log.
        Logger detector = (Logger) LoggerFactory.getLogger(ResourceLeakDetector.class);
        detector.setAdditive(false);
        int before = LeakReports.count();
        int reported = 0;
        try {
            leak();
            for (int i = 0; i < 20 && reported == 0; i++) {
                NoBufferLeaks.surfaceLeaks();
                reported = LeakReports.count() - before;
            }
        } finally {
            detector.setAdditive(true);
            LeakReports.acknowledge(reported); // not a failure of this class
        }
        assertTrue(reported >= 1, "a leaked buffer was not reported");
    }

    private static void leak() {
        ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(32);
        b.writeLong(42); // and never released
    }
}
