#include "util/sha256.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include <openssl/evp.h>

#include "util/hex.h"

namespace switchboard::detail {

namespace {

// OpenSSL 3 looks the algorithm up in its provider tables on every
// EVP_Digest(..., EVP_sha256(), ...) (an implicit fetch, with a lock): one
// fetch for the process, and one context per thread, make a short hash about
// 2.5 times cheaper (it runs per request, for the session and agent ids).
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

struct CtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace

std::array<unsigned char, 32> sha256_digest(std::string_view data) {
  thread_local const std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) {
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  }
  std::array<unsigned char, 32> out{};
  std::memcpy(out.data(), digest, out.size());
  return out;
}

namespace {

std::string hex_of(const std::array<unsigned char, 32>& digest) { return hex_of_bytes(digest.data(), digest.size()); }

}  // namespace

std::string sha256_hex(std::string_view data) { return hex_of(sha256_digest(data)); }

namespace {

void check(bool ok) {
  if (!ok) throw std::bad_alloc();
}

using EvpCtx = std::unique_ptr<EVP_MD_CTX, CtxFree>;

// At most this many contexts wait a thread (nested hashes are rare).
constexpr std::size_t kSpareContexts = 4;

// The contexts this thread's finished hashes gave back (Sha256's contract),
// with room for kSpareContexts made up front: giving one back allocates
// nothing (it happens in a destructor).
std::vector<EvpCtx>& spare_contexts() {
  thread_local std::vector<EvpCtx> spare = [] {
    std::vector<EvpCtx> v;
    v.reserve(kSpareContexts);
    return v;
  }();
  return spare;
}

// A context made for SHA-256 with nothing fed: a spare one when there is.
EvpCtx take_context() {
  std::vector<EvpCtx>& spare = spare_contexts();
  EvpCtx ctx;  // OpenSSL fails a SHA-256 context only when it cannot allocate one
  if (!spare.empty()) {
    ctx = std::move(spare.back());
    spare.pop_back();
  } else {
    ctx.reset(EVP_MD_CTX_new());
  }
  check(ctx != nullptr && EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) == 1);
  return ctx;
}

}  // namespace

Sha256::Sha256() : ctx_(take_context().release()) {}

Sha256::~Sha256() {
  EvpCtx ctx(ctx_);
  std::vector<EvpCtx>& spare = spare_contexts();
  if (spare.size() < spare.capacity()) spare.push_back(std::move(ctx));  // else freed here
}

void Sha256::update(std::string_view data) { check(EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1); }

std::array<unsigned char, 32> Sha256::digest() const {
  // Finishes a copy, so the running hash goes on (OpenSSL duplicates the
  // running state into it: one allocation a digest).
  thread_local const EvpCtx copy(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  check(copy != nullptr && EVP_MD_CTX_copy_ex(copy.get(), ctx_) == 1 &&
        EVP_DigestFinal_ex(copy.get(), digest, &len) == 1);
  std::array<unsigned char, 32> out{};
  std::memcpy(out.data(), digest, out.size());
  return out;
}

std::string Sha256::hex() const { return hex_of(digest()); }

void Sha256::write_hex(char* out, std::size_t digits) const {
  const std::array<unsigned char, 32> d = digest();
  put_hex_bytes(out, d.data(), std::min(digits, 2 * d.size()));
}

}  // namespace switchboard::detail
