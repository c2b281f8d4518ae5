// `mpirun -np 2 lmlab train` as a user runs it (docs/distributed.md): two ranks with half the
// batch each give one rank's losses (float tolerance: the two halves' gradients are summed in
// another order than one GEMM over the whole batch would), resume on two ranks is bit-exact,
// mismatched configs are refused at start-up, and a rank that fails, is killed or hangs ends the
// job in bounded time with the last checkpoint still loadable. Built only when CMake found MPI.
#include <dirent.h>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"
#include "tests/train/cli_util.h"

namespace lmlab {
namespace {

namespace fs = std::filesystem;
using test::Child;
using test::csv_rows;
using test::read_file;
using test::RunResult;
using test::TempDir;

class MpiTrain : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }

  // mpirun with the flags a root container needs (--allow-run-as-root), more ranks than cores
  // (--oversubscribe), and no core binding (two tests' jobs may run at once on 2 cores).
  static std::vector<std::string> mpirun() {
    return {LMLAB_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"};
  }
  // `lmlab train tiny.yaml` on the small corpus, 1 thread, into run_dir, plus sets.
  std::vector<std::string> train(const std::string& run_dir, std::vector<std::string> sets,
                                 std::vector<std::string> extra = {"--quiet"}) const {
    std::vector<std::string> a{test::lmlab_binary(),
                               "train",
                               test::tiny_config(),
                               "--run-dir",
                               run_dir,
                               "--set",
                               "data.corpus=" + corpus_,
                               "--set",
                               "train.threads=1",
                               "--set",
                               "train.sample_tokens=0"};
    for (const std::string& s : sets) a.insert(a.end(), {"--set", s});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::vector<std::string> ranks(int n, const std::vector<std::string>& cmd) const {
    std::vector<std::string> a = mpirun();
    a.insert(a.end(), {"-np", std::to_string(n)});
    a.insert(a.end(), cmd.begin(), cmd.end());
    return a;
  }
  // An MPMD launch: rank 0 runs `a`, rank 1 runs `b`.
  static std::vector<std::string> mpmd(const std::vector<std::string>& a,
                                       const std::vector<std::string>& b) {
    std::vector<std::string> argv = mpirun();
    argv.insert(argv.end(), {"-np", "1"});
    argv.insert(argv.end(), a.begin(), a.end());
    argv.insert(argv.end(), {":", "-np", "1"});
    argv.insert(argv.end(), b.begin(), b.end());
    return argv;
  }
  RunResult run(const std::vector<std::string>& argv, double timeout_s = 120) const {
    Child child(argv, io_.str());
    RunResult r;
    r.code = child.wait(timeout_s);
    r.out = child.out();
    r.err = child.err();
    return r;
  }

  TempDir dir_{"mpi"};
  TempDir io_{"mpi_io"};
  std::string corpus_ = dir_ / "corpus.txt";
};

double num(const std::string& s) { return s.empty() ? NAN : std::stod(s); }

// Rows in a metrics.csv that may not exist yet.
size_t csv_rows_if_any(const std::string& path) {
  return fs::exists(path) ? csv_rows(path).size() : 0;
}

// The global batch is batch_size x ranks x grad_accum: 2 ranks x 4 rows give 1 rank's 8, with
// accumulation and dropout (each rank draws its rows' masks of the one-process draw).
TEST_F(MpiTrain, TwoRanksWithHalfTheBatchMatchOneRankWithAllOfIt) {
  // Width 128: 1.6 MiB of gradients, so 1 MiB buckets make two, one of them started during the
  // backward by the tape's hook.
  const std::vector<std::string> common{
      "train.max_iters=30", "train.eval_interval=10", "optim.decay_iters=30", "train.grad_accum=2",
      "model.dropout=0.1",  "model.n_embd=128",       "train.bucket_mb=1"};
  auto with = [&](const std::string& batch) {
    std::vector<std::string> s = common;
    s.push_back(batch);
    return s;
  };
  const std::string one = dir_ / "one", two = dir_ / "two";
  RunResult a = run(train(one, with("train.batch_size=8")));
  ASSERT_EQ(a.code, 0) << a.err;
  RunResult b = run(ranks(2, train(two, with("train.batch_size=4"), {"--no-plot"})));
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  // Rank 0 alone reports: one banner naming the ranks, one final line.
  EXPECT_NE(b.out.find("2 data-parallel ranks"), std::string::npos) << b.out;
  size_t done = 0;
  for (size_t p = b.out.find("train: done"); p != std::string::npos;
       p = b.out.find("train: done", p + 1))
    ++done;
  EXPECT_EQ(done, 1u) << b.out;

  const auto ra = csv_rows(one + "/metrics.csv"), rb = csv_rows(two + "/metrics.csv");
  ASSERT_EQ(ra.size(), 30u);
  ASSERT_EQ(rb.size(), 30u);
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i][0], rb[i][0]);  // step
    EXPECT_EQ(ra[i][1], rb[i][1]) << "tokens seen at row " << i;
    EXPECT_EQ(ra[i][2], rb[i][2]) << "lr at row " << i;
    EXPECT_NEAR(num(ra[i][3]), num(rb[i][3]), 2e-4) << "train loss at step " << i;
    if (!ra[i][4].empty()) {
      EXPECT_NEAR(num(ra[i][4]), num(rb[i][4]), 2e-4) << "val loss at step " << i;
    }
    EXPECT_NEAR(num(ra[i][7]), num(rb[i][7]), 1e-3 * num(ra[i][7])) << "grad norm at step " << i;
  }
  EXPECT_LT(num(ra.back()[4]), num(ra.front()[4]) - 0.3) << "the model should have learned";
  const auto ja = nlohmann::json::parse(read_file(one + "/result.json"));
  const auto jb = nlohmann::json::parse(read_file(two + "/result.json"));
  EXPECT_EQ(jb["ranks"], 2);
  EXPECT_EQ(ja["ranks"], 1);
  EXPECT_EQ(ja["tokens_seen"], jb["tokens_seen"]);
  EXPECT_EQ(jb["allreduce_buckets"].get<int>(), 2);
  // A bucket handed to MPI during the backward makes the span from the first start to the end
  // longer than the wait after the backward (with every bucket started after it, it is shorter).
  EXPECT_GT(jb["allreduce_ms_median"].get<double>(), jb["allreduce_wait_ms_median"].get<double>());
}

TEST_F(MpiTrain, ResumeOnTwoRanksIsBitExact) {
  const std::vector<std::string> s{"train.batch_size=4", "optim.decay_iters=20",
                                   "model.dropout=0.1", "train.eval_interval=5"};
  auto steps = [&](int n) {
    std::vector<std::string> v = s;
    v.push_back("train.max_iters=" + std::to_string(n));
    return v;
  };
  const std::string straight = dir_ / "straight", resumed = dir_ / "resumed";
  ASSERT_EQ(run(ranks(2, train(straight, steps(20)))).code, 0);
  ASSERT_EQ(run(ranks(2, train(resumed, steps(10)))).code, 0);
  RunResult r = run(ranks(2, train(resumed, steps(20), {"--quiet", "--resume"})));
  ASSERT_EQ(r.code, 0) << r.err;
  test::expect_steps(resumed + "/metrics.csv", 20);
  test::expect_same_metrics(straight + "/metrics.csv", resumed + "/metrics.csv");
  test::expect_same_tensors(straight + "/ckpt.safetensors", resumed + "/ckpt.safetensors");
}

// Ctrl-C on mpirun: Open MPI forwards SIGTERM to the ranks, which agree to stop after the same
// step; rank 0 writes the checkpoint, and --resume continues bit-exactly.
TEST_F(MpiTrain, InterruptingMpirunCheckpointsAndResumes) {
  const std::vector<std::string> s{"optim.decay_iters=1000", "model.dropout=0.1",
                                   "train.eval_interval=1000000"};
  auto with = [&](int steps) {
    std::vector<std::string> v = s;
    v.push_back("train.max_iters=" + std::to_string(steps));
    return v;
  };
  const std::string stopped = dir_ / "stopped", straight = dir_ / "straight";
  Child job(ranks(2, train(stopped, with(1000000))), io_.str());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (csv_rows_if_any(stopped + "/metrics.csv") < 5 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  job.signal(SIGINT);
  const int code = job.wait(60);
  ASSERT_NE(code, -1) << "mpirun did not stop";
  EXPECT_NE(job.err().find("train: interrupted (signal"), std::string::npos) << job.err();
  ASSERT_TRUE(fs::exists(stopped + "/ckpt.safetensors")) << job.err();
  const int done = int(csv_rows(stopped + "/metrics.csv").size());
  ASSERT_GE(done, 5);
  ASSERT_EQ(run(ranks(2, train(stopped, with(done + 3), {"--quiet", "--resume"}))).code, 0);
  ASSERT_EQ(run(ranks(2, train(straight, with(done + 3)))).code, 0);
  test::expect_same_metrics(straight + "/metrics.csv", stopped + "/metrics.csv");
  test::expect_same_tensors(straight + "/ckpt.safetensors", stopped + "/ckpt.safetensors");
}

// A 2-rank checkpoint resumes on 1 rank with the same global batch (2 x 4 -> 1 x 8) and follows
// the 2-rank run (float tolerance); a resume that would change the global batch is refused.
TEST_F(MpiTrain, ResumeOnAnotherRankCountKeepsTheGlobalBatch) {
  const std::vector<std::string> s{"optim.decay_iters=20", "model.dropout=0.1",
                                   "train.eval_interval=5"};
  auto with = [&](int steps, int batch) {
    std::vector<std::string> v = s;
    v.push_back("train.max_iters=" + std::to_string(steps));
    v.push_back("train.batch_size=" + std::to_string(batch));
    return v;
  };
  const std::string two = dir_ / "two", moved = dir_ / "moved";
  ASSERT_EQ(run(ranks(2, train(two, with(20, 4)))).code, 0);
  ASSERT_EQ(run(ranks(2, train(moved, with(10, 4)))).code, 0);
  RunResult refused = run(train(moved, with(20, 4), {"--quiet", "--resume"}));
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("was written by 2 rank(s) x train.batch_size 4 (a global batch of 8); "
                             "this run has 1 rank(s) x 4 = 4: resume needs the same global batch "
                             "(set train.batch_size=8)"),
            std::string::npos)
      << refused.err;
  RunResult r = run(train(moved, with(20, 8), {"--quiet", "--resume"}));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = csv_rows(two + "/metrics.csv"), b = csv_rows(moved + "/metrics.csv");
  ASSERT_EQ(a.size(), 20u);
  ASSERT_EQ(b.size(), 20u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i][1], b[i][1]) << "tokens seen at row " << i;
    EXPECT_NEAR(num(a[i][3]), num(b[i][3]), 2e-4) << "train loss at step " << i;
  }
}

// MPMD launch: rank 1 gets another learning rate. Both refuse before the first step.
TEST_F(MpiTrain, MismatchedConfigsAcrossRanksAreRefused) {
  const std::string run_dir = dir_ / "mismatch";
  RunResult r = run(mpmd(train(run_dir, {"train.max_iters=5"}),
                         train(run_dir, {"train.max_iters=5", "optim.lr=0.002"})),
                    60);
  ASSERT_NE(r.code, -1) << "the job did not end";
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("rank 1 was started with a different config than rank 0"), std::string::npos)
      << r.err;
  // Rank 1 names the key.
  EXPECT_NE(r.err.find("rank 1 has optim.lr: 0.002, rank 0 optim.lr: 0.001"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(run_dir + "/ckpt.safetensors"));
  EXPECT_FALSE(fs::exists(run_dir + "/metrics.csv"));
}

// The same relative data.corpus names other text in rank 1's working directory (as another
// machine's copy would): refused before the first step, naming the corpus rather than the
// vocabulary.
TEST_F(MpiTrain, ADifferentCorpusOnOneRankIsRefused) {
  const std::string a = dir_ / "a", b = dir_ / "b", run_dir = dir_ / "corpus_differs";
  fs::create_directories(a);
  fs::create_directories(b);
  test::write_file(a + "/corpus.txt", test::small_corpus(120));
  test::write_file(b + "/corpus.txt", test::small_corpus(100));
  auto cmd = [&](const std::string& wdir) {
    std::vector<std::string> v{"-np", "1", "-wdir", wdir};
    for (const std::string& x : train(run_dir, {"train.max_iters=5", "data.corpus=corpus.txt"}))
      v.push_back(x);
    return v;
  };
  std::vector<std::string> argv = mpirun();
  for (const std::string& x : cmd(a)) argv.push_back(x);
  argv.push_back(":");
  for (const std::string& x : cmd(b)) argv.push_back(x);
  RunResult r = run(argv, 60);
  ASSERT_NE(r.code, -1) << "the job did not end";
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("[dist] rank 1 trains on a different corpus than rank 0"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(run_dir + "/ckpt.safetensors"));
}

// Rank 1 fails alone (its corpus does not exist) while rank 0 waits for it at start-up: the error
// names rank 1, and the whole job ends instead of hanging.
TEST_F(MpiTrain, AnErrorOnOneRankEndsTheJob) {
  const std::string run_dir = dir_ / "one_fails";
  RunResult r =
      run(mpmd(train(run_dir, {"train.max_iters=5"}),
               train(run_dir, {"train.max_iters=5", "data.corpus=" + (dir_ / "missing.txt")})),
          60);
  ASSERT_NE(r.code, -1) << "the job did not end";
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("rank 1: lmlab train: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
}

// The pids of `parent`'s children (from /proc).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t close = line.rfind(')');  // "pid (comm) state ppid ..."
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(pid_t(std::stoi(name)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(MpiTrain, AKilledRankEndsTheJobAndTheLastCheckpointLoads) {
  const std::string run_dir = dir_ / "killed";
  Child job(ranks(2, train(run_dir, {"train.max_iters=1000000", "train.checkpoint_interval=10",
                                     "train.eval_interval=1000000"})),
            io_.str());
  const std::string ckpt = run_dir + "/ckpt.safetensors";
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(ckpt) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(ckpt)) << "no checkpoint after 60 s: " << job.err();
  std::vector<pid_t> ranks_pids;
  for (int tries = 0; tries < 100 && ranks_pids.size() < 2; ++tries) {
    ranks_pids = children_of(job.pid());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(ranks_pids.size(), 2u);
  const auto killed_at = std::chrono::steady_clock::now();
  ::kill(ranks_pids.back(), SIGKILL);
  const int code = job.wait(60);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_NE(code, -1) << "the job did not end within 60 s of the kill";
  EXPECT_NE(code, 0);
  EXPECT_LT(took, 30.0);
  EXPECT_NE(job.err().find("signal 9"), std::string::npos) << job.err();  // mpirun names the rank
  RunResult eval = test::run_lmlab({"eval", ckpt}, io_.str());
  EXPECT_EQ(eval.code, 0) << eval.err;
  EXPECT_NE(eval.out.find("val_loss"), std::string::npos) << eval.out;
}

// A rank that stops without dying (SIGSTOP here; a stalled link or a deadlock in practice): the
// others' watchdog gives up after LMLAB_DIST_TIMEOUT seconds, names the wait, and the job ends.
TEST_F(MpiTrain, AStuckRankEndsTheJobAfterTheTimeout) {
  const std::string run_dir = dir_ / "stuck";
  test::ChildOptions o;
  o.env = {"LMLAB_DIST_TIMEOUT=5"};  // well above any skew between the ranks on a busy machine
  Child job(ranks(2, train(run_dir, {"train.max_iters=1000000", "train.checkpoint_interval=10",
                                     "train.eval_interval=1000000"})),
            io_.str(), o);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(run_dir + "/ckpt.safetensors") && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(run_dir + "/ckpt.safetensors")) << job.err();
  const std::vector<pid_t> pids = children_of(job.pid());
  ASSERT_EQ(pids.size(), 2u);
  const auto stopped_at = std::chrono::steady_clock::now();
  ::kill(pids.back(), SIGSTOP);
  const int code = job.wait(60);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  ::kill(pids.back(), SIGKILL);  // in case the launcher left it stopped
  ASSERT_NE(code, -1) << "the job did not end within 60 s";
  EXPECT_NE(code, 0);
  EXPECT_LT(took, 30.0);
  EXPECT_NE(job.err().find("[dist] waited more than 5 s for the other ranks in"), std::string::npos)
      << job.err();
  EXPECT_EQ(test::run_lmlab({"eval", run_dir + "/ckpt.safetensors"}, io_.str()).code, 0);
}

TEST_F(MpiTrain, OnlyTrainRunsAsRanks) {
  RunResult r = run(ranks(2, {test::lmlab_binary(), "eval", dir_ / "nothing.safetensors"}), 60);
  ASSERT_NE(r.code, -1);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("only `lmlab train` runs as data-parallel ranks"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace lmlab
