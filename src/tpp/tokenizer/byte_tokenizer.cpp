#include "tpp/tokenizer/byte_tokenizer.h"

namespace tpp {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() + 1);
  if (add_bos) ids.push_back(kBos);
  for (unsigned char ch : text) ids.push_back(int32_t(ch));
  return ids;
}

std::string ByteTokenizer::decode_one(int32_t id) const {
  if (id >= 0 && id < 256) return std::string(1, char(id));
  return {};
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += decode_one(id);
  return out;
}

}  // namespace tpp
