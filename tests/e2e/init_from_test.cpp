// Pretrained weights in an experiment ([backbone] init_from with init_sha256): the real `asg` binary builds
// ModelScope's UNet from a diffusers UNet3DConditionModel state_dict made in the reference environment, and
// refuses a wrong hash, a missing hash, and weights that do not fit, naming the key and the tensors, before
// anything is recorded.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "asg/hash.h"
#include "asg/nn/safetensors.h"
#include "cli_fixture.h"

namespace fs = std::filesystem;
using asg::testing::CliTest;
using Result = asg::testing::CliResult;
using asg::testing::run_asg;

namespace {
// The fixture's "small" UNet3DConditionModel, as modelscope_unet3d parameters, with ModelScope's temporal conv.
std::string modelscope_experiment(const std::string& init_lines, const std::string& temporal = "plugin = \"temporal_conv\"\ngroups = 8\n") {
  return "base = [\"tiny.toml\"]\n[text_encoder]\ndim = 24\n"
         "[backbone]\nplugin = \"modelscope_unet3d\"\nblock_out_channels = [32, 64]\n"
         "down_block_types = [\"CrossAttnDownBlock3D\", \"DownBlock3D\"]\nup_block_types = [\"UpBlock3D\", \"CrossAttnUpBlock3D\"]\n"
         "layers_per_block = 1\nnorm_num_groups = 8\nattention_head_dim = 16\n" +
         init_lines + "[temporal]\n" + temporal;
}
}  // namespace

TEST_F(CliTest, BackboneStartsFromDiffusersWeightsCheckedByHashAndByName) {
  ASSERT_TRUE(asg::testing::write_fixture("unet3d_reference.py", dir_ / "unet", "--config small"));
  const fs::path weights = dir_ / "unet" / "weights.safetensors";
  const std::string sha = asg::sha256_file(weights);

  // The file, and the folder form (a diffusers folder holds diffusion_pytorch_model.safetensors).
  std::ofstream(dir_ / "pretrained.toml") << modelscope_experiment(fmt::format("init_from = \"unet/weights.safetensors\"\ninit_sha256 = \"{}\"\n", sha));
  Result ok = run_asg("validate --build pretrained.toml", dir_);
  ASSERT_EQ(ok.code, 0) << ok.output;
  fs::create_directories(dir_ / "folder");
  fs::copy_file(weights, dir_ / "folder" / "diffusion_pytorch_model.safetensors");
  std::ofstream(dir_ / "folder.toml") << modelscope_experiment(fmt::format("init_from = \"folder\"\ninit_sha256 = \"{}\"\n", sha));
  Result folder = run_asg("validate --build folder.toml", dir_);
  EXPECT_EQ(folder.code, 0) << folder.output;

  // The weights are part of the method: another file is another method hash.
  std::ofstream(dir_ / "scratch.toml") << modelscope_experiment("");
  Result scratch = run_asg("validate scratch.toml", dir_);
  ASSERT_EQ(scratch.code, 0) << scratch.output;
  auto method_line = [](const std::string& out) {
    auto at = out.find("method");
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_NE(method_line(ok.output), method_line(scratch.output));
  EXPECT_FALSE(method_line(ok.output).empty()) << ok.output;

  // A wrong hash names both hashes and the key's line.
  std::ofstream(dir_ / "wrong_hash.toml") << modelscope_experiment(
      fmt::format("init_from = \"unet/weights.safetensors\"\ninit_sha256 = \"{}\"\n", std::string(64, 'a')));
  Result wrong = run_asg("validate --build wrong_hash.toml", dir_);
  EXPECT_EQ(wrong.code, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("[backbone] init_from = \"" + weights.string() + "\": the file's sha256 is " + sha + ", not init_sha256 = \"" +
                              std::string(64, 'a') + "\""),
            std::string::npos)
      << wrong.output;

  // No hash at all.
  std::ofstream(dir_ / "no_hash.toml") << modelscope_experiment("init_from = \"unet/weights.safetensors\"\n");
  Result no_hash = run_asg("validate no_hash.toml", dir_);
  EXPECT_EQ(no_hash.code, 2) << no_hash.output;
  EXPECT_NE(no_hash.output.find("[backbone] init_from needs init_sha256 = \"<the file's sha256>\" beside it"), std::string::npos)
      << no_hash.output;

  // Weights of another configuration: every missing tensor named, nothing loaded.
  std::string deeper_toml = modelscope_experiment(fmt::format("init_from = \"unet/weights.safetensors\"\ninit_sha256 = \"{}\"\n", sha));
  deeper_toml.replace(deeper_toml.find("layers_per_block = 1"), 20, "layers_per_block = 2");
  std::ofstream(dir_ / "deeper.toml") << deeper_toml;
  Result deeper = run_asg("validate --build deeper.toml", dir_);
  EXPECT_EQ(deeper.code, 2) << deeper.output;
  EXPECT_NE(deeper.output.find("the weights do not fit this model (nothing was loaded)"), std::string::npos) << deeper.output;
  EXPECT_NE(deeper.output.find("'down_blocks.0.resnets.1.conv1.weight'"), std::string::npos) << deeper.output;

  // STI in the temporal slots: ModelScope's temp_convs do not fit it, unless init_allow_missing says so.
  const std::string sti = "plugin = \"sti\"\nheads = 2\nhead_dim = 8\ngroups = 8\n";
  std::ofstream(dir_ / "sti.toml") << modelscope_experiment(
      fmt::format("init_from = \"unet/weights.safetensors\"\ninit_sha256 = \"{}\"\n", sha), sti);
  Result strict = run_asg("validate --build sti.toml", dir_);
  EXPECT_EQ(strict.code, 2) << strict.output;
  EXPECT_NE(strict.output.find("'down_blocks.0.temp_convs.0.transformer_blocks.to_q.weight'"), std::string::npos) << strict.output;
  EXPECT_NE(strict.output.find("unexpected ("), std::string::npos) << strict.output;
  EXPECT_NE(strict.output.find("'down_blocks.0.temp_convs.0.conv1.0.weight'"), std::string::npos) << strict.output;
  std::ofstream(dir_ / "sti_allowed.toml") << modelscope_experiment(
      fmt::format("init_from = \"unet/weights.safetensors\"\ninit_sha256 = \"{}\"\ninit_allow_missing = [\"*.temp_convs.*\"]\n", sha), sti);
  Result allowed = run_asg("validate --build sti_allowed.toml", dir_);
  EXPECT_EQ(allowed.code, 0) << allowed.output;

  EXPECT_FALSE(fs::exists(registry()));  // nothing recorded by any of it
}

TEST_F(CliTest, WeightsImportChecksDiffusersFoldersAndShardsAndRecordsWhereTheyCameFrom) {
  ASSERT_TRUE(asg::testing::write_fixture("unet3d_reference.py", dir_ / "unet", "--config small --save-pretrained"));
  const fs::path folder = dir_ / "unet" / "pretrained";

  Result imported = run_asg("weights import --format diffusers unet/pretrained --out imported.safetensors", dir_);
  ASSERT_EQ(imported.code, 0) << imported.output;
  EXPECT_NE(imported.output.find("(UNet3DConditionModel) from 1 file: "), std::string::npos) << imported.output;
  EXPECT_NE(imported.output.find("checked against backbone 'modelscope_unet3d'"), std::string::npos) << imported.output;
  EXPECT_NE(imported.output.find("block_out_channels = [32, 64]\n"), std::string::npos) << imported.output;
  const std::string sha = asg::sha256_file(dir_ / "imported.safetensors");
  EXPECT_NE(imported.output.find("init_sha256 = \"" + sha + "\""), std::string::npos) << imported.output;

  // Its provenance: the class and the source file's sha256.
  Result shown = run_asg("weights show imported.safetensors", dir_);
  ASSERT_EQ(shown.code, 0) << shown.output;
  EXPECT_NE(shown.output.find("source_class: UNet3DConditionModel"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("diffusion_pytorch_model.safetensors:" + asg::sha256_file(folder / "diffusion_pytorch_model.safetensors")),
            std::string::npos)
      << shown.output;

  // The sharded save of the same model imports to the same tensors.
  Result sharded = run_asg("weights import --format diffusers unet/sharded --out sharded.safetensors --dtype float16", dir_);
  ASSERT_EQ(sharded.code, 0) << sharded.output;
  EXPECT_NE(sharded.output.find("from 33 files"), std::string::npos) << sharded.output;
  auto a = asg::nn::read_safetensors(dir_ / "imported.safetensors").tensors, b = asg::nn::read_safetensors(dir_ / "sharded.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a) {
    ASSERT_TRUE(b.contains(key)) << key;
    EXPECT_EQ(b[key].scalar_type(), torch::kFloat16) << key;
    EXPECT_TRUE(torch::equal(t.to(torch::kFloat16), b[key])) << key;
  }

  // The imported file is what an experiment's init_from takes.
  std::ofstream(dir_ / "imported.toml") << modelscope_experiment(fmt::format("init_from = \"imported.safetensors\"\ninit_sha256 = \"{}\"\n", sha));
  Result built = run_asg("validate --build imported.toml", dir_);
  EXPECT_EQ(built.code, 0) << built.output;

  // A config that does not describe the weights: every tensor that does not fit is named, nothing is written.
  {
    nlohmann::json config;
    std::ifstream(folder / "config.json") >> config;
    config["layers_per_block"] = 2;
    std::ofstream(folder / "config.json") << config.dump();
  }
  Result misfit = run_asg("weights import --format diffusers unet/pretrained --out misfit.safetensors", dir_);
  EXPECT_EQ(misfit.code, 2) << misfit.output;
  EXPECT_NE(misfit.output.find("unet/pretrained as UNet3DConditionModel for backbone 'modelscope_unet3d': the weights do not fit"),
            std::string::npos)
      << misfit.output;
  EXPECT_NE(misfit.output.find("'down_blocks.0.resnets.1.conv1.weight'"), std::string::npos) << misfit.output;
  EXPECT_FALSE(fs::exists(dir_ / "misfit.safetensors"));

  // A class import does not know yet, and a setting modelscope_unet3d does not implement.
  {
    nlohmann::json config;
    std::ifstream(folder / "config.json") >> config;
    config["_class_name"] = "UNetSpatioTemporalConditionModel";
    std::ofstream(folder / "config.json") << config.dump();
  }
  Result i2v = run_asg("weights import --format diffusers unet/pretrained --out i2v.safetensors", dir_);
  EXPECT_EQ(i2v.code, 2) << i2v.output;
  EXPECT_NE(i2v.output.find("class 'UNetSpatioTemporalConditionModel' cannot be imported yet (valid: AutoencoderKL, BertModel, CLIPTextModel, "),
            std::string::npos)
      << i2v.output;
  {
    nlohmann::json config;
    std::ifstream(folder / "config.json") >> config;
    config["_class_name"] = "UNet3DConditionModel";
    config["layers_per_block"] = 1;
    config["act_fn"] = "gelu";
    std::ofstream(folder / "config.json") << config.dump();
  }
  Result act = run_asg("weights import --format diffusers unet/pretrained --out act.safetensors", dir_);
  EXPECT_EQ(act.code, 2) << act.output;
  EXPECT_NE(act.output.find("config.json: \"act_fn\" = \"gelu\", but modelscope_unet3d implements UNet3DConditionModel with \"silu\" only"),
            std::string::npos)
      << act.output;
}

// I2VGen-XL's UNet imports for i2vgenxl_unet; an experiment cannot use it whole yet, because its CLIP image
// embedding needs an image encoder ASG Lab does not have, and the refusal says so before anything is recorded.
// I2VGen-XL's two pretrained parts, its UNet (diffusers) and its CLIP image encoder (transformers), import; an
// experiment with the UNet alone is refused for want of the encoder, and with both it builds and runs, trained
// on the first frame and evaluated on the image task (the embedding of the given frame in both).
TEST_F(CliTest, I2VGenXLsUnetAndImageEncoderImportAndARunEmbedsTheGivenFrame) {
  ASSERT_TRUE(asg::testing::write_fixture("i2vgenxl_reference.py", dir_ / "i2v", "--config small --save-pretrained"));
  ASSERT_TRUE(asg::testing::write_fixture("clip_vision_reference.py", dir_ / "clipv", "--config small --save-pretrained"));
  Result imported = run_asg("weights import --format diffusers i2v/pretrained --out i2v.safetensors", dir_);
  ASSERT_EQ(imported.code, 0) << imported.output;
  EXPECT_NE(imported.output.find("checked against backbone 'i2vgenxl_unet'"), std::string::npos) << imported.output;
  EXPECT_NE(imported.output.find("plugin = \"i2vgenxl_unet\""), std::string::npos) << imported.output;
  Result image = run_asg("weights import --format transformers clipv/pretrained --out image_encoder.safetensors", dir_);
  ASSERT_EQ(image.code, 0) << image.output;
  EXPECT_NE(image.output.find("(CLIPVisionModelWithProjection) from 1 file"), std::string::npos) << image.output;
  EXPECT_NE(image.output.find("checked against image_encoder 'clip_vision'"), std::string::npos) << image.output;
  const auto table_at = image.output.find("[image_encoder]\nplugin = \"clip_vision\"\n");
  ASSERT_NE(table_at, std::string::npos) << image.output;
  const std::string unet = fmt::format(
      "base = [\"tiny.toml\"]\n[text_encoder]\ndim = 24\n[backbone]\nplugin = \"i2vgenxl_unet\"\nblock_out_channels = [32, 64]\n"
      "down_block_types = [\"CrossAttnDownBlock3D\", \"DownBlock3D\"]\nup_block_types = [\"UpBlock3D\", \"CrossAttnUpBlock3D\"]\n"
      "layers_per_block = 1\nnorm_num_groups = 8\nattention_head_dim = 16\ninit_from = \"i2v.safetensors\"\ninit_sha256 = \"{}\"\n"
      "[temporal]\nplugin = \"temporal_conv\"\ngroups = 8\n[conditioning]\ntasks = [\"image\"]\nimage_frame = \"first\"\n"
      "[eval]\ntask = \"image\"\nnum_samples = 4\n[train]\nsteps = 3\n[sampler]\nsteps = 2\n",
      asg::sha256_file(dir_ / "i2v.safetensors"));
  std::ofstream(dir_ / "i2v.toml") << unet;
  Result refused = run_asg("validate --build i2v.toml", dir_);
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("takes a 24-wide image embedding (I2VGen-XL's CLIP image embedding) and the experiment has no "
                                "[image_encoder] to compute it"),
            std::string::npos)
      << refused.output;

  // The printed table (its init_sha256 included) is the [image_encoder] section.
  std::string table;
  std::istringstream lines(image.output.substr(table_at));
  for (std::string line; std::getline(lines, line) && !line.empty();) table += line + "\n";
  std::ofstream(dir_ / "i2v_image.toml") << unet << table;
  Result built = run_asg("validate --build i2v_image.toml", dir_);
  ASSERT_EQ(built.code, 0) << table << built.output;
  EXPECT_NE(built.output.find("image encoder 'clip_vision' gives [1, 24] embeddings"), std::string::npos) << built.output;
  Result run = run_asg("run i2v_image.toml", dir_);
  ASSERT_EQ(run.code, 0) << run.output;

  // An image encoder of another width, and one beside a backbone that takes no embedding: refused by name.
  std::ofstream(dir_ / "wide.toml") << "base = [\"i2v_image.toml\"]\n[image_encoder]\nprojection_dim = 32\n";
  Result wide = run_asg("validate --build wide.toml", dir_);
  EXPECT_EQ(wide.code, 2) << wide.output;
  EXPECT_NE(wide.output.find("gives 32-wide embeddings; [backbone] backbone 'i2vgenxl_unet' takes 24-wide ones"), std::string::npos)
      << wide.output;
  std::ofstream(dir_ / "unused.toml") << "base = [\"i2v_image.toml\"]\n[backbone]\nimage_embedding = \"none\"\n"
                                          "init_allow_missing = [\"context_embedding.*\"]\n";
  Result unused = run_asg("validate --build unused.toml", dir_);
  EXPECT_EQ(unused.code, 2) << unused.output;
  EXPECT_NE(unused.output.find("is set but [backbone] backbone 'i2vgenxl_unet' takes no image embedding"), std::string::npos)
      << unused.output;
  // Without a condition task there is no frame to encode.
  std::ofstream(dir_ / "no_tasks.toml") << "base = [\"i2v_image.toml\"]\n[conditioning]\ntasks = []\n[eval]\ntask = \"generation\"\n";
  Result no_tasks = run_asg("validate --build no_tasks.toml", dir_);
  EXPECT_EQ(no_tasks.code, 2) << no_tasks.output;
  EXPECT_NE(no_tasks.output.find("encodes the frame a condition task gives, and [conditioning] tasks is empty"), std::string::npos)
      << no_tasks.output;
}

TEST_F(CliTest, StableDiffusionsVaeImportsAndCodesTheLatentSpaceOfARun) {
  ASSERT_TRUE(asg::testing::write_fixture("autoencoder_kl_reference.py", dir_ / "vae", "--config small --save-pretrained"));
  Result imported = run_asg("weights import --format diffusers vae/pretrained --out vae.safetensors", dir_);
  ASSERT_EQ(imported.code, 0) << imported.output;
  EXPECT_NE(imported.output.find("checked against autoencoder 'autoencoder_kl'"), std::string::npos) << imported.output;
  EXPECT_NE(imported.output.find("[autoencoder]\nplugin = \"autoencoder_kl\"\nblock_out_channels = [32, 64]\n"), std::string::npos)
      << imported.output;
  // The latent diffusion experiment: SD's VAE (small) with its imported weights, the tiny UNet on its 8x8 latents.
  std::ofstream(dir_ / "latent.toml") << fmt::format(
      "base = [\"tiny.toml\"]\n[autoencoder]\nplugin = \"autoencoder_kl\"\nblock_out_channels = [32, 64]\nlayers_per_block = 1\n"
      "norm_num_groups = 8\ninit_from = \"vae.safetensors\"\ninit_sha256 = \"{}\"\n",
      asg::sha256_file(dir_ / "vae.safetensors"));
  Result built = run_asg("validate --build latent.toml", dir_);
  EXPECT_EQ(built.code, 0) << built.output;
  EXPECT_NE(built.output.find("[1, 4, 8, 8, 8]"), std::string::npos) << built.output;  // 4 latent channels, 8 frames of 8x8
}

// The text towers: transformers' own saves (transformers 5 names CLIPTextModel's tensors without text_model.,
// and ChineseCLIPModel's folder holds the image tower too) import for clip_text, t5_text and chinese_clip_text,
// saying what they drop, and start an experiment's text encoder.
TEST_F(CliTest, TextTowersImportFromTransformersFoldersAndStartTheTextEncoder) {
  struct Tower {
    std::string model, config, plugin, cls, tokenizer_line, dropped;
  };
  const std::vector<Tower> towers = {
      {"clip", "deep", "clip_text", "CLIPTextModel", "merges = \"" + (asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt").string() + "\"\n", ""},
      {"t5", "small", "t5_text", "T5EncoderModel",
       "vocabulary = \"" + (asg::testing::source_dir() / "tests/fixtures/wordpiece_vocab.txt").string() + "\"\n", ""},
      {"bert", "small", "chinese_clip_text", "ChineseCLIPModel",
       "vocabulary = \"" + (asg::testing::source_dir() / "tests/fixtures/wordpiece_vocab.txt").string() + "\"\n", "dropped vision_model.*"},
  };
  for (const auto& tower : towers) {
    SCOPED_TRACE(tower.plugin);
    ASSERT_TRUE(asg::testing::write_fixture("text_models_reference.py", dir_ / tower.model,
                                            "--model " + tower.model + " --config " + tower.config + " --save-pretrained"));
    const std::string out = tower.model + ".safetensors";
    Result imported = run_asg("weights import --format transformers " + tower.model + "/pretrained --out " + out, dir_);
    ASSERT_EQ(imported.code, 0) << imported.output;
    EXPECT_NE(imported.output.find("(" + tower.cls + ") from 1 file"), std::string::npos) << imported.output;
    EXPECT_NE(imported.output.find("checked against text_encoder '" + tower.plugin + "'"), std::string::npos) << imported.output;
    if (!tower.dropped.empty()) {
      EXPECT_NE(imported.output.find(tower.dropped), std::string::npos) << imported.output;
    }
    // The printed table, with the tokenizer file set, builds the encoder from the imported weights.
    const auto table_at = imported.output.find("[text_encoder]");
    ASSERT_NE(table_at, std::string::npos) << imported.output;
    std::string table;
    std::istringstream lines(imported.output.substr(table_at));
    for (std::string line; std::getline(lines, line);)
      if (line.find("# set this") == std::string::npos) table += line + "\n";
    std::ofstream(dir_ / (tower.model + ".toml")) << "base = [\"tiny.toml\"]\n" << table << tower.tokenizer_line;
    Result built = run_asg("validate --build " + tower.model + ".toml", dir_);
    EXPECT_EQ(built.code, 0) << table << built.output;
  }

  // RDTF's dual encoder from the two imported towers: merged behind their prefixes, its MLP from scratch.
  Result merged = run_asg("weights merge chinese_clip.=bert.safetensors t5.=t5.safetensors --out rdtf.safetensors", dir_);
  ASSERT_EQ(merged.code, 0) << merged.output;
  Result merged_shown = run_asg("weights show rdtf.safetensors", dir_);
  EXPECT_NE(merged_shown.output.find("merged_from: chinese_clip.=bert.safetensors:" + asg::sha256_file(dir_ / "bert.safetensors")),
            std::string::npos)
      << merged_shown.output;
  const std::string vocabulary = (asg::testing::source_dir() / "tests/fixtures/wordpiece_vocab.txt").string();
  const std::string rdtf_table = fmt::format(
      "base = [\"tiny.toml\"]\n[text_encoder]\nplugin = \"rdtf_text\"\nclip_vocabulary = \"{0}\"\nt5_vocabulary = \"{0}\"\n"
      "clip_context_length = 16\nt5_context_length = 12\nclip_vocab_size = 200\nclip_hidden_size = 32\nclip_intermediate_size = 64\n"
      "clip_layers = 2\nclip_heads = 4\nclip_max_positions = 40\nt5_vocab_size = 100\nt5_d_model = 32\nt5_d_kv = 8\nt5_d_ff = 64\n"
      "t5_layers = 2\nt5_heads = 4\ninit_from = \"rdtf.safetensors\"\ninit_sha256 = \"{1}\"\n",
      vocabulary, asg::sha256_file(dir_ / "rdtf.safetensors"));
  std::ofstream(dir_ / "rdtf_strict.toml") << rdtf_table;
  Result strict = run_asg("validate --build rdtf_strict.toml", dir_);
  EXPECT_EQ(strict.code, 2) << strict.output;
  EXPECT_NE(strict.output.find("'t5_mlp.0.weight'"), std::string::npos) << strict.output;
  std::ofstream(dir_ / "rdtf.toml") << rdtf_table << "init_allow_missing = [\"t5_mlp.*\"]\n";
  Result rdtf = run_asg("validate --build rdtf.toml", dir_);
  EXPECT_EQ(rdtf.code, 0) << rdtf.output;
  Result clash = run_asg("weights merge a.=t5.safetensors a.=t5.safetensors --out clash.safetensors", dir_);
  EXPECT_EQ(clash.code, 2) << clash.output;
  EXPECT_NE(clash.output.find("is also given by"), std::string::npos) << clash.output;
  EXPECT_FALSE(fs::exists(dir_ / "clash.safetensors"));

  // The wrong format for the class is refused, naming the right one.
  Result wrong = run_asg("weights import --format diffusers t5/pretrained --out x.safetensors", dir_);
  EXPECT_EQ(wrong.code, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("--format diffusers, but T5EncoderModel weights come in the transformers format (valid: --format transformers)"),
            std::string::npos)
      << wrong.output;
}
