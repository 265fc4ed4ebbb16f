#include "tpp/serve/json_grammar.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace tpp::serve {

using nlohmann::json;

struct JsonGrammar::Node {
  enum Type : uint8_t { kAny, kObject, kArray, kString, kNumber, kInteger, kLiterals };
  Type type = kAny;
  std::vector<std::string> keys;  // object: property names, in the schema's order
  std::vector<int> values;        // object: their nodes (-1: the generic object of any keys)
  uint64_t required = 0;
  int items = 0;                  // array: the items' node
  int64_t min_items = 0, max_items = -1;
  std::vector<std::string> literals;  // enum / const / boolean / null: JSON texts
};

namespace {

enum FrameKind : uint8_t { kObj, kArr, kStr, kNum, kLit };
constexpr int kAnyNode = 0;       // any JSON value
constexpr int kKeywordsNode = 1;  // true, false, null
constexpr int kMaxWs = 8;

bool is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

std::shared_ptr<const JsonGrammar> JsonGrammar::any_object() {
  std::shared_ptr<JsonGrammar> g(new JsonGrammar());
  g->compile(json::object(), "", true);
  return g;
}

std::shared_ptr<const JsonGrammar> JsonGrammar::from_schema(const json& schema) {
  std::shared_ptr<JsonGrammar> g(new JsonGrammar());
  g->compile(schema, "schema", true);
  return g;
}

int JsonGrammar::compile(const json& schema, const std::string& path, bool root) {
  if (nodes_.empty()) {
    nodes_.push_back({});  // kAnyNode
    Node kw;
    kw.type = Node::kLiterals;
    kw.literals = {"true", "false", "null"};
    nodes_.push_back(kw);  // kKeywordsNode
  }
  if (!schema.is_object()) throw SchemaError(fmt::format("{} must be an object (a JSON schema)", path));
  static const std::set<std::string> known = {"type",     "properties", "required",    "additionalProperties",
                                              "items",    "minItems",   "maxItems",    "enum",
                                              "const",    "title",      "description", "default",
                                              "$schema",  "examples",   "strict"};
  for (auto it = schema.begin(); it != schema.end(); ++it)
    if (!known.count(it.key()))
      throw SchemaError(fmt::format("{}.{} is not supported (supported: type, properties, required, "
                                    "additionalProperties: false, items, minItems, maxItems, enum, const)",
                                    path, it.key()));
  Node n;
  auto literals = [&](const json& values, const std::string& where) {
    n.type = Node::kLiterals;
    for (const auto& v : values) n.literals.push_back(v.dump());
    if (n.literals.empty() || n.literals.size() > 64)
      throw SchemaError(fmt::format("{} must hold 1 to 64 values", where));
  };
  if (schema.contains("const")) {
    literals(json::array({schema["const"]}), path + ".const");
  } else if (schema.contains("enum")) {
    if (!schema["enum"].is_array()) throw SchemaError(path + ".enum must be an array");
    literals(schema["enum"], path + ".enum");
  } else if (!schema.contains("type")) {
    if (root) {
      n.type = Node::kObject;
      n.values = {-1};  // any keys
    } else {
      return kAnyNode;
    }
  } else {
    if (!schema["type"].is_string())
      throw SchemaError(fmt::format("{}.type must be one type name (type lists are not supported)", path));
    const std::string t = schema["type"].get<std::string>();
    if (t == "object") {
      n.type = Node::kObject;
      if (schema.contains("additionalProperties") && schema["additionalProperties"] != false)
        throw SchemaError(path + ".additionalProperties: only false is supported");
      if (schema.contains("properties")) {
        const json& props = schema["properties"];
        if (!props.is_object() || props.size() > 64)
          throw SchemaError(path + ".properties must be an object of at most 64 properties");
        for (auto it = props.begin(); it != props.end(); ++it) {
          for (unsigned char c : it.key())
            if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
              throw SchemaError(fmt::format("{}.properties: the name '{}' must be printable ASCII without '\"' or '\\'",
                                            path, it.key()));
          n.keys.push_back(it.key());
        }
        // Nodes are compiled after n's own fields are fixed (compile grows nodes_).
        for (size_t i = 0; i < n.keys.size(); ++i)
          n.values.push_back(compile(props[n.keys[i]], path + ".properties." + n.keys[i], false));
      } else {
        n.values = {-1};
      }
      if (schema.contains("required")) {
        if (!schema["required"].is_array()) throw SchemaError(path + ".required must be an array of names");
        for (const auto& r : schema["required"]) {
          const auto it = r.is_string() ? std::find(n.keys.begin(), n.keys.end(), r.get<std::string>()) : n.keys.end();
          if (it == n.keys.end())
            throw SchemaError(fmt::format("{}.required names {}, which is not in its properties", path, r.dump()));
          n.required |= uint64_t(1) << (it - n.keys.begin());
        }
      }
    } else if (t == "array") {
      n.type = Node::kArray;
      n.items = schema.contains("items") ? compile(schema["items"], path + ".items", false) : kAnyNode;
      auto count = [&](const char* key, int64_t fallback) {
        if (!schema.contains(key)) return fallback;
        if (!schema[key].is_number_unsigned()) throw SchemaError(fmt::format("{}.{} must be a non-negative integer", path, key));
        return int64_t(std::min<uint64_t>(schema[key].get<uint64_t>(), 1u << 30));
      };
      n.min_items = count("minItems", 0);
      n.max_items = count("maxItems", -1);
      if (n.max_items >= 0 && n.max_items < n.min_items) throw SchemaError(path + ": maxItems < minItems");
    } else if (t == "string") {
      n.type = Node::kString;
    } else if (t == "number") {
      n.type = Node::kNumber;
    } else if (t == "integer") {
      n.type = Node::kInteger;
    } else if (t == "boolean") {
      literals(json::array({true, false}), path);
    } else if (t == "null") {
      literals(json::array({nullptr}), path);
    } else {
      throw SchemaError(fmt::format("{}.type '{}' is not a JSON schema type", path, t));
    }
  }
  if (root && n.type != Node::kObject)
    throw SchemaError(path + ": the top level must be an object (\"type\": \"object\")");
  nodes_.push_back(std::move(n));
  return int(nodes_.size()) - 1;
}

JsonGrammar::State JsonGrammar::initial() const { return State{}; }

bool JsonGrammar::start_value(State& s, int node, unsigned char c) const {
  const Node& n = nodes_[size_t(node)];
  Frame f;
  f.node = node;
  auto literal = [&](int lit_node) {
    const Node& ln = nodes_[size_t(lit_node)];
    f.node = lit_node;
    f.kind = kLit;
    for (size_t i = 0; i < ln.literals.size(); ++i)
      if (static_cast<unsigned char>(ln.literals[i][0]) == c) f.mask |= uint64_t(1) << i;
    f.pos = 1;
    return f.mask != 0;
  };
  bool ok = false;
  switch (n.type) {
    case Node::kAny:
      if (c == '{') {
        f.kind = kObj;
        f.node = -1;  // any keys
        ok = true;
      } else if (c == '[') {
        f.kind = kArr;
        ok = true;
      } else if (c == '"') {
        f.kind = kStr;
        ok = true;
      } else if (c == '-' || is_digit(c)) {
        f.kind = kNum;
        f.phase = c == '-' ? 0 : c == '0' ? 1 : 2;
        ok = true;
      } else {
        ok = literal(kKeywordsNode);
      }
      break;
    case Node::kObject:
      f.kind = kObj;
      if (n.values.size() == 1 && n.values[0] == -1) f.node = -1;
      ok = c == '{';
      break;
    case Node::kArray:
      f.kind = kArr;
      ok = c == '[';
      break;
    case Node::kString:
      f.kind = kStr;
      ok = c == '"';
      break;
    case Node::kNumber:
    case Node::kInteger:
      f.kind = kNum;
      f.phase = c == '-' ? 0 : c == '0' ? 1 : 2;
      ok = c == '-' || is_digit(c);
      break;
    case Node::kLiterals:
      ok = literal(node);
      break;
  }
  if (!ok) return false;
  // An array of the generic kind keeps the any-value node for its items.
  if (f.kind == kArr && n.type == Node::kAny) f.node = kAnyNode;
  s.stack.push_back(f);
  return true;
}

// The top frame finished its value: pop it and advance its parent.
void JsonGrammar::value_done(State& s) const {
  s.stack.pop_back();
  if (s.stack.empty()) {
    s.done = true;
    return;
  }
  Frame& p = s.stack.back();
  if (p.kind == kObj) {
    p.phase = p.phase == 1 ? 2 : 4;  // a generic key, or a value
  } else if (p.kind == kArr) {
    p.phase = 1;
    ++p.count;
  }
}

bool JsonGrammar::step(State& s, unsigned char c) const {
  if (s.done) return false;
  if (s.stack.empty()) {  // before the top-level object
    if (is_ws(c)) return ++s.ws <= kMaxWs;
    s.ws = 0;
    // The root node is the last compiled one.
    return c == '{' && start_value(s, int(nodes_.size()) - 1, c);
  }
  Frame& f = s.stack.back();
  switch (f.kind) {
    case kStr: {
      if (s.utf8 > 0) {
        if (c < 0x80 || c > 0xBF) return false;
        --s.utf8;
        return true;
      }
      if (f.phase == 1) {  // after a backslash
        if (c == 'u') f.phase = 2;
        else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') f.phase = 0;
        else return false;
        return true;
      }
      if (f.phase >= 2) {  // \uXXXX
        if (!is_hex(c)) return false;
        f.phase = f.phase == 5 ? 0 : f.phase + 1;
        return true;
      }
      if (c == '"') {
        value_done(s);
        return true;
      }
      if (c == '\\') {
        f.phase = 1;
        return true;
      }
      if (c < 0x20) return false;
      if (c >= 0x80) {
        if (c >= 0xC2 && c <= 0xDF) s.utf8 = 1;
        else if (c >= 0xE0 && c <= 0xEF) s.utf8 = 2;
        else if (c >= 0xF0 && c <= 0xF4) s.utf8 = 3;
        else return false;
      }
      return true;
    }
    case kNum: {
      const bool integer = f.node >= 0 && nodes_[size_t(f.node)].type == Node::kInteger;
      int next = -1;
      switch (f.phase) {
        case 0: next = c == '0' ? 1 : is_digit(c) ? 2 : -1; break;
        case 1: next = !integer && c == '.' ? 3 : !integer && (c == 'e' || c == 'E') ? 5 : -1; break;
        case 2: next = is_digit(c) ? 2 : !integer && c == '.' ? 3 : !integer && (c == 'e' || c == 'E') ? 5 : -1; break;
        case 3: next = is_digit(c) ? 4 : -1; break;
        case 4: next = is_digit(c) ? 4 : (c == 'e' || c == 'E') ? 5 : -1; break;
        case 5: next = c == '+' || c == '-' ? 6 : is_digit(c) ? 7 : -1; break;
        case 6: next = is_digit(c) ? 7 : -1; break;
        case 7: next = is_digit(c) ? 7 : -1; break;
      }
      if (next >= 0) {
        f.phase = uint8_t(next);
        return true;
      }
      // The number ends here if it is complete; c belongs to the parent.
      if (f.phase != 1 && f.phase != 2 && f.phase != 4 && f.phase != 7) return false;
      value_done(s);
      return step(s, c);
    }
    case kLit: {
      const Node& n = nodes_[size_t(f.node)];
      uint64_t keep = 0;
      bool complete = false;
      for (size_t i = 0; i < n.literals.size(); ++i) {
        if (!(f.mask >> i & 1)) continue;
        const std::string& l = n.literals[i];
        if (l.size() == f.pos) complete = true;
        else if (static_cast<unsigned char>(l[f.pos]) == c) keep |= uint64_t(1) << i;
      }
      if (keep) {
        f.mask = keep;
        ++f.pos;
        // A literal that ends in a quote, bracket or brace cannot go on.
        for (size_t i = 0; i < n.literals.size(); ++i)
          if ((keep >> i & 1) && n.literals[i].size() == f.pos && keep == (uint64_t(1) << i) &&
              (c == '"' || c == ']' || c == '}')) {
            value_done(s);
            break;
          }
        return true;
      }
      if (!complete) return false;
      value_done(s);
      return step(s, c);
    }
    case kObj: {
      const Node* n = f.node >= 0 ? &nodes_[size_t(f.node)] : nullptr;
      if (is_ws(c) && f.phase != 6) return ++s.ws <= kMaxWs;
      s.ws = 0;
      const uint64_t all = n ? (n->keys.size() == 64 ? ~uint64_t(0) : (uint64_t(1) << n->keys.size()) - 1) : 0;
      switch (f.phase) {
        case 0:
        case 5:
          if (c == '}' && f.phase == 0 && (!n || (n->required & ~f.mask) == 0)) {
            value_done(s);
            return true;
          }
          if (c != '"') return false;
          if (!n) {  // any key: a string frame
            f.phase = 1;
            Frame k;
            k.kind = kStr;
            k.node = kAnyNode;
            s.stack.push_back(k);
            return true;
          }
          if ((all & ~f.mask) == 0) return false;
          f.phase = 6;  // typing a schema key: every unseen key is a candidate
          f.pos = 0;
          f.cand = all & ~f.mask;
          return true;
        case 2:
          if (c != ':') return false;
          f.phase = 3;
          return true;
        case 3:
          return start_value(s, n ? n->values[size_t(f.count)] : kAnyNode, c);
        case 4:
          if (c == ',' && (!n || (all & ~f.mask) != 0)) {
            f.phase = 5;
            return true;
          }
          if (c == '}' && (!n || (n->required & ~f.mask) == 0)) {
            value_done(s);
            return true;
          }
          return false;
        case 6: {  // a schema key: the candidates are the keys typed so far
          uint64_t keep = 0;
          for (size_t i = 0; i < n->keys.size(); ++i) {
            if (!(f.cand >> i & 1)) continue;
            const std::string& k = n->keys[i];
            if (k.size() == f.pos && c == '"') {
              f.mask |= uint64_t(1) << i;
              f.count = int32_t(i);
              f.phase = 2;
              return true;
            }
            if (k.size() > f.pos && static_cast<unsigned char>(k[f.pos]) == c) keep |= uint64_t(1) << i;
          }
          if (!keep) return false;
          f.cand = keep;
          ++f.pos;
          return true;
        }
      }
      return false;
    }
    case kArr: {
      if (is_ws(c)) return ++s.ws <= kMaxWs;
      s.ws = 0;
      const Node& n = nodes_[size_t(f.node)];
      const int item = n.type == Node::kArray ? n.items : kAnyNode;
      const int64_t lo = n.type == Node::kArray ? n.min_items : 0, hi = n.type == Node::kArray ? n.max_items : -1;
      if (f.phase == 0 && c == ']' && lo == 0) {
        value_done(s);
        return true;
      }
      if (f.phase == 1) {
        if (c == ',' && (hi < 0 || f.count < hi)) {
          f.phase = 2;
          return true;
        }
        if (c == ']' && f.count >= lo) {
          value_done(s);
          return true;
        }
        return false;
      }
      if (f.phase == 0 && hi == 0) return false;
      return start_value(s, item, c);
    }
  }
  return false;
}

bool JsonGrammar::feed(State& s, std::string_view bytes) const {
  for (unsigned char c : bytes)
    if (!step(s, c)) return false;
  return true;
}

bool JsonGrammar::accepts(const State& s, std::string_view bytes) const {
  if (bytes.empty()) return false;
  thread_local State tmp;
  tmp.stack.assign(s.stack.begin(), s.stack.end());
  tmp.ws = s.ws;
  tmp.utf8 = s.utf8;
  tmp.done = s.done;
  return feed(tmp, bytes);
}

}  // namespace tpp::serve
