using System.Runtime.InteropServices;
using Checkpointing.Formats.Interop.Detectron;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>detectron2's name-matching heuristics at the level of names and shapes (its tests/test_checkpoint.py and c2 conversion).</summary>
public sealed class DetectronHeuristicsTests
{
    /// <summary>test_complex_model_loaded: model keys carry extra nesting (block1.) the checkpoint lacks.</summary>
    [Theory]
    [InlineData("")]
    [InlineData("module.")] // the model wrapped in DataParallel
    public void Complex_model_takes_the_longest_complete_suffix(string prefix)
    {
        var model = Shapes(
            ($"{prefix}block1.layer1.weight", [3, 2]), ($"{prefix}block1.layer1.bias", [3]),
            ($"{prefix}layer2.weight", [2, 3]), ($"{prefix}layer2.bias", [2]),
            ($"{prefix}res.layer2.weight", [2, 3]), ($"{prefix}res.layer2.bias", [2]));
        var checkpoint = new Dictionary<string, HostTensor>
        {
            ["layer1.weight"] = Tensor(3, 2), ["layer1.bias"] = Tensor(3),
            ["layer2.weight"] = Tensor(2, 3), ["layer2.bias"] = Tensor(2),
            ["res.layer2.weight"] = Tensor(2, 3), ["res.layer2.bias"] = Tensor(2),
        };

        var (loaded, alignment) = StateDictAlignment.AlignAndUpdateStateDicts(model, checkpoint, c2Conversion: false);

        Assert.Empty(alignment.Warnings);
        Assert.Empty(alignment.UnmatchedCheckpointKeys);
        Assert.Equal(model.Count, loaded.Count);
        // Model keys in their order meet the checkpoint values in theirs, as the Python test zips them.
        foreach (var ((modelKey, _), stored) in model.Zip(checkpoint.Values)) Assert.Same(stored, loaded[modelKey]);
    }

    [Fact]
    public void Report_groups_each_submodule_on_one_row()
    {
        var model = Shapes(("block1.layer1.weight", [3, 2]), ("block1.layer1.bias", [3]), ("layer2.weight", [2, 3]), ("layer2.bias", [2]), ("head.fc", [4]));
        var checkpoint = Shapes(("layer1.weight", [3, 2]), ("layer1.bias", [3]), ("layer2.weight", [2, 3]), ("layer2.bias", [2]), ("fc", [4]));

        var report = StateDictAlignment.Align(model, checkpoint).Report;

        Assert.Equal(
            """
            Following weights matched with model:
            | Names in Model   | Names in Checkpoint   | Shapes     |
            |:-----------------|:----------------------|:-----------|
            | block1.layer1.*  | layer1.{bias,weight}  | (3,) (3,2) |
            | head.fc          | fc                    | (4,)       |
            | layer2.*         | layer2.{bias,weight}  | (2,) (2,3) |
            """,
            report);
    }

    [Fact]
    public void Report_names_the_submodule_every_match_lies_in()
    {
        var model = Shapes(("backbone.res2.conv1.weight", [1]), ("backbone.res2.conv1.bias", [1]));
        var checkpoint = Shapes(("res2.conv1.weight", [1]), ("res2.conv1.bias", [1]));

        Assert.StartsWith("Following weights matched with submodule backbone.res2.conv1:\n", StateDictAlignment.Align(model, checkpoint).Report);
    }

    [Fact]
    public void One_checkpoint_key_matching_two_model_keys_is_an_error()
    {
        var model = Shapes(("a.conv.weight", [2]), ("b.conv.weight", [2]));
        var checkpoint = Shapes(("conv.weight", [2]));

        var error = Assert.Throws<ArgumentException>(() => StateDictAlignment.Align(model, checkpoint));

        Assert.StartsWith("Cannot match one checkpoint key to multiple keys in the model.", error.Message);
        Assert.Contains("a.conv.weight", error.Message);
        Assert.Contains("b.conv.weight", error.Message);
    }

    [Fact]
    public void Shape_mismatch_is_skipped_with_a_warning_and_left_unmatched()
    {
        var model = Shapes(("roi_heads.box_predictor.cls_score.weight", [81, 1024]), ("backbone.conv1.weight", [2]));
        var checkpoint = Shapes(("cls_score.weight", [91, 1024]), ("conv1.weight", [2]));

        var alignment = StateDictAlignment.Align(model, checkpoint);

        Assert.Equal([new KeyValuePair<string, string>("backbone.conv1.weight", "conv1.weight")], alignment.Matches);
        Assert.Equal(["cls_score.weight"], alignment.UnmatchedCheckpointKeys);
        var warning = Assert.Single(alignment.Warnings);
        Assert.Contains("Shape of cls_score.weight in checkpoint is torch.Size([91, 1024]), while shape of roi_heads.box_predictor.cls_score.weight in model is torch.Size([81, 1024]).", warning);
        Assert.Contains("cls_score.weight will not be loaded.", warning);
    }

    [Theory]
    [InlineData("roi_heads.mesh_head.whatever_conv1.weight", "conv1.weight", false)]
    [InlineData("roi_heads.mesh_head.whatever_conv1.weight", "whatever_conv1.weight", true)]
    [InlineData("conv1.weight", "conv1.weight", true)]
    [InlineData("xconv1.weight", "conv1.weight", false)]
    public void Only_complete_dotted_suffixes_match(string modelKey, string checkpointKey, bool matches) =>
        Assert.Equal(matches, StateDictAlignment.IsSuffixMatch(modelKey, checkpointKey));

    [Fact]
    public void Nothing_matching_returns_the_checkpoint_unchanged()
    {
        var checkpoint = new Dictionary<string, HostTensor> { ["x"] = Tensor(1) };

        var (loaded, alignment) = StateDictAlignment.AlignAndUpdateStateDicts(Shapes(("y", [1])), checkpoint, c2Conversion: false);

        Assert.Equal("No weights in checkpoint matched with model.", alignment.Report);
        Assert.Same(checkpoint["x"], Assert.Single(loaded).Value);
    }

    [Theory]
    [InlineData("conv1_w", "stem.conv1.weight")]
    [InlineData("res_conv1_bn_s", "stem.conv1.norm.weight")]
    [InlineData("res_conv1_bn_b", "stem.conv1.norm.bias")]
    [InlineData("res2_0_branch2a_w", "res2.0.conv1.weight")]
    [InlineData("res2_0_branch2c_bn_s", "res2.0.conv3.norm.weight")]
    [InlineData("res2_0_branch1_bn_rm", "res2.0.shortcut.norm.running_mean")]
    [InlineData("res3_1_branch2b_gn_s", "res3.1.conv2.norm.weight")]
    [InlineData("pred_w", "linear.weight")]
    [InlineData("fc1000_b", "fc1000.bias")]
    public void Basic_c2_names(string c2, string detectron2) =>
        Assert.Equal(detectron2, Assert.Single(C2NameConversion.ConvertBasicC2Names([c2])));

    [Theory]
    [InlineData("conv_rpn_fpn2_w", "proposal_generator.rpn_head.conv.weight")]
    [InlineData("conv_rpn_w", "proposal_generator.rpn_head.conv.weight")]
    [InlineData("rpn_bbox_pred_fpn2_b", "proposal_generator.rpn_head.anchor_deltas.bias")]
    [InlineData("rpn_cls_logits_w", "proposal_generator.rpn_head.objectness_logits.weight")]
    [InlineData("fpn_inner_res2_2_sum_lateral_w", "fpn_lateral2.weight")]
    [InlineData("fpn_res3_3_sum_b", "fpn_output3.bias")]
    [InlineData("fpn_res4_5_sum_gn_s", "fpn_output4.norm.weight")]
    [InlineData("fc6_w", "box_head.fc1.weight")]
    [InlineData("fc7_b", "box_head.fc2.bias")]
    [InlineData("head_conv1_gn_s", "box_head.conv1.norm.weight")]
    [InlineData("_[mask]_fcn1_w", "mask_head.mask_fcn1.weight")]
    [InlineData("mask_fcn_logits_w", "mask_head.predictor.weight")]
    [InlineData("conv5_mask_w", "mask_head.deconv.weight")]
    [InlineData("conv_fcn1_w", "roi_heads.keypoint_head.conv_fcn1.weight")]
    [InlineData("kps_score_lowres_b", "roi_heads.keypoint_head.score_lowres.bias")]
    [InlineData("bbox_pred_w", "bbox_pred.weight")]
    [InlineData("cls_score_b", "cls_score.bias")]
    public void Detectron_c2_names(string c2, string detectron2) =>
        Assert.Equal((detectron2, c2), Assert.Single(C2NameConversion.ConvertC2DetectronNames([c2])));

    [Fact]
    public void Background_class_rows_are_dropped_or_moved_last()
    {
        var weights = new Dictionary<string, HostTensor>
        {
            ["bbox_pred_w"] = Rows(3 * 4, 2),   // 2 classes + background, 4 deltas each
            ["cls_score_b"] = Rows(3, 1),
            ["mask_fcn_logits_w"] = Rows(3, 2),
            ["res2_0_branch2a_w"] = Rows(2, 2),
        };

        var (converted, originals, log) = C2NameConversion.ConvertC2DetectronWeights(weights);

        Assert.Equal([8L, 2], converted["bbox_pred.weight"].Shape);
        Assert.Equal(Enumerable.Range(4, 8).SelectMany(r => new[] { r * 10f, r * 10f + 1 }), Floats(converted["bbox_pred.weight"]));
        Assert.Equal([10f, 20f, 0f], Floats(converted["cls_score.bias"]));
        Assert.Equal([10f, 11, 20, 21], Floats(converted["mask_head.predictor.weight"]));
        Assert.Same(weights["res2_0_branch2a_w"], converted["res2.0.conv1.weight"]);
        Assert.Equal("bbox_pred_w", originals["bbox_pred.weight"]);
        Assert.Contains("Remove prediction weight for background class in bbox_pred.weight. The shape changes from (12, 2) to (8, 2).", log);
        Assert.Contains("Move classification weights for background class in cls_score.bias from index 0 to index 2.", log);
    }

    [Fact]
    public void C2_conversion_feeds_the_alignment_and_the_report_shows_c2_names()
    {
        var model = Shapes(("backbone.bottom_up.stem.conv1.weight", [2, 3]), ("roi_heads.box_predictor.cls_score.bias", [3]));
        var checkpoint = new Dictionary<string, HostTensor> { ["conv1_w"] = Tensor(2, 3), ["cls_score_b"] = Tensor(3) };

        var (loaded, alignment) = StateDictAlignment.AlignAndUpdateStateDicts(model, checkpoint, c2Conversion: true);

        Assert.Equal(["backbone.bottom_up.stem.conv1.weight", "roi_heads.box_predictor.cls_score.bias"], loaded.Keys);
        Assert.Empty(alignment.UnmatchedCheckpointKeys);
        Assert.Contains("| conv1_w ", alignment.Report);
        Assert.Contains("| cls_score_b ", alignment.Report);
    }

    [Fact]
    public void Two_c2_names_converging_on_one_name_is_an_error()
    {
        var error = Assert.Throws<ArgumentException>(() => C2NameConversion.ConvertC2DetectronNames(["conv_rpn_w", "conv_rpn_fpn2_w"]));

        Assert.Contains("proposal_generator.rpn_head.conv.weight", error.Message);
    }

    private static Dictionary<string, long[]> Shapes(params (string Key, long[] Shape)[] entries) => entries.ToDictionary(e => e.Key, e => e.Shape);

    private static HostTensor Tensor(params long[] shape) => HostTensor.Allocate(TensorDType.F32, shape);

    /// <summary>A float tensor whose element [r, c] is r * 10 + c.</summary>
    private static HostTensor Rows(int rows, int columns)
    {
        var values = Enumerable.Range(0, rows).SelectMany(r => Enumerable.Range(0, columns).Select(c => r * 10f + c)).ToArray();
        long[] shape = columns == 1 ? [rows] : [rows, columns];
        return new HostTensor(TensorDType.F32, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
    }

    private static float[] Floats(HostTensor tensor) => MemoryMarshal.Cast<byte, float>(tensor.Data).ToArray();
}
