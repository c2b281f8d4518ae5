// The ablation's child processes (train/ablation/pool.h): at most `jobs` at a time, their exit
// codes, their output in the log after the command line, and none left behind by the pool.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <thread>

#include "tests/train/cli_util.h"
#include "train/ablation/pool.h"

namespace lmlab::test {
namespace {

// Reaps until `n` children have exited (or 20 s have passed).
std::vector<ChildPool::Exited> reap_all(ChildPool& pool, size_t n) {
  std::vector<ChildPool::Exited> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    for (const ChildPool::Exited& e : pool.reap()) out.push_back(e);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return out;
}

TEST(AblationPool, RunsChildrenIntoTheirLogsAndReapsTheirExitCodes) {
  TempDir dir("pool");
  ChildPool pool(2);
  EXPECT_TRUE(pool.empty());
  pool.start(7, {"/bin/sh", "-c", "echo threads=$OMP_NUM_THREADS; exit 3"}, dir / "a.log", 3);
  EXPECT_FALSE(pool.full());
  pool.start(9, {"/bin/sh", "-c", "kill -TERM $$"}, dir / "b.log", 1);
  EXPECT_TRUE(pool.full());
  ASSERT_EQ(pool.running().size(), 2u);
  EXPECT_EQ(pool.running()[0].id, 7u);

  auto exited = reap_all(pool, 2);
  ASSERT_EQ(exited.size(), 2u);
  std::sort(exited.begin(), exited.end(), [](auto& a, auto& b) { return a.id < b.id; });
  EXPECT_EQ(exited[0].code, 3);
  EXPECT_EQ(exited[1].code, 128 + SIGTERM);
  EXPECT_GE(exited[0].seconds, 0.0);
  EXPECT_TRUE(pool.empty());
  EXPECT_EQ(read_file(dir / "a.log"),
            "$ /bin/sh -c 'echo threads=$OMP_NUM_THREADS; exit 3'\nthreads=3\n");

  pool.start(1, {dir / "missing-binary"}, dir / "c.log", 1);
  exited = reap_all(pool, 1);
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0].code, 127);
  EXPECT_NE(read_file(dir / "c.log").find("ablate: cannot execute"), std::string::npos);
}

// A pool unwound by an exception stops and reaps its children: none is left running.
TEST(AblationPool, DestroyingThePoolStopsAndReapsItsChildren) {
  TempDir dir("pool_end");
  pid_t pid = 0;
  try {
    ChildPool pool(1);
    pool.start(0, {"/bin/sleep", "30"}, dir / "sleep.log", 1);
    pid = pool.running()[0].pid;
    throw std::runtime_error("the report failed");
  } catch (const std::runtime_error&) {
  }
  ASSERT_GT(pid, 0);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);  // already reaped: not our child any more
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace lmlab::test
