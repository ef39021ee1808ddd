using System.Globalization;
using System.Text.RegularExpressions;

namespace Checkpointing.Formats.Interop.Detectron;

/// <summary>
/// Renames Caffe2 / Detectron1 weights to detectron2 names, as detectron2's
/// <c>convert_basic_c2_names</c> and <c>convert_c2_detectron_names</c> do: the same rules in the
/// same order, since later rules see the output of earlier ones.
/// </summary>
public static class C2NameConversion
{
    private static readonly Func<string, string>[] BasicRules =
    [
        k => k switch { "pred_b" => "linear_b", "pred_w" => "linear_w", _ => k },
        k => k.Replace('_', '.'),
        Sub(@"\.b$", ".bias"),
        Sub(@"\.w$", ".weight"),
        // batch norm and group norm both become "norm"
        Sub(@"bn\.s$", "norm.weight"),
        Sub(@"bn\.bias$", "norm.bias"),
        Sub(@"bn\.rm", "norm.running_mean"),
        Sub(@"bn\.running.mean$", "norm.running_mean"),
        Sub(@"bn\.riv$", "norm.running_var"),
        Sub(@"bn\.running.var$", "norm.running_var"),
        Sub(@"bn\.gamma$", "norm.weight"),
        Sub(@"bn\.beta$", "norm.bias"),
        Sub(@"gn\.s$", "norm.weight"),
        Sub(@"gn\.bias$", "norm.bias"),
        // stem; "stem." keeps it apart from other "conv1"s (e.g. in heads)
        Sub(@"^res\.conv1\.norm\.", "conv1.norm."),
        Sub(@"^conv1\.", "stem.conv1."),
        // residual blocks
        Replace(".branch1.", ".shortcut."),
        Replace(".branch2a.", ".conv1."),
        Replace(".branch2b.", ".conv2."),
        Replace(".branch2c.", ".conv3."),
        // DensePose
        Sub(@"^body.conv.fcn", "body_conv_fcn"),
        Replace("AnnIndex.lowres", "ann_index_lowres"),
        Replace("Index.UV.lowres", "index_uv_lowres"),
        Replace("U.lowres", "u_lowres"),
        Replace("V.lowres", "v_lowres"),
    ];

    private static readonly Func<string, string>[] DetectronRules =
    [
        // RPN: in FPN models the head is defined at level 2 ("fpn2") and shared by the other levels
        Replace("conv.rpn.fpn2", "proposal_generator.rpn_head.conv"),
        Replace("conv.rpn", "proposal_generator.rpn_head.conv"),
        Replace("rpn.bbox.pred.fpn2", "proposal_generator.rpn_head.anchor_deltas"),
        Replace("rpn.cls.logits.fpn2", "proposal_generator.rpn_head.objectness_logits"),
        Replace("rpn.bbox.pred", "proposal_generator.rpn_head.anchor_deltas"),
        Replace("rpn.cls.logits", "proposal_generator.rpn_head.objectness_logits"),
        // Fast R-CNN box head
        Sub(@"^bbox\.pred", "bbox_pred"),
        Sub(@"^cls\.score", "cls_score"),
        Sub(@"^fc6\.", "box_head.fc1."),
        Sub(@"^fc7\.", "box_head.fc2."),
        Sub(@"^head\.conv", "box_head.conv"),
        FpnName,
        // Mask R-CNN head (StandardROIHeads, then Res5ROIHeads)
        Replace(".[mask].fcn", "mask_head.mask_fcn"),
        Sub(@"^\.mask\.fcn", "mask_head.mask_fcn"),
        Replace("mask.fcn.logits", "mask_head.predictor"),
        Replace("conv5.mask", "mask_head.deconv"),
        // keypoint head: its convs are simply named "conv_fcnX"
        Replace("conv.fcn", "roi_heads.keypoint_head.conv_fcn"),
        Replace("kps.score.lowres", "roi_heads.keypoint_head.score_lowres"),
        Replace("kps.score.", "roi_heads.keypoint_head.score."),
    ];

    /// <summary>The backbone renames (<c>convert_basic_c2_names</c>); one output name per input name.</summary>
    public static List<string> ConvertBasicC2Names(IEnumerable<string> originalKeys) =>
        originalKeys.Select(k => BasicRules.Aggregate(k, (name, rule) => rule(name))).ToList();

    /// <summary>
    /// The full Detectron renames (<c>convert_c2_detectron_names</c>) of <paramref name="originalKeys"/>
    /// sorted by ordinal order, as detectron2 sorts them: (new name, original name) pairs.
    /// </summary>
    public static List<(string Name, string Original)> ConvertC2DetectronNames(IEnumerable<string> originalKeys)
    {
        var originals = originalKeys.Order(StringComparer.Ordinal).ToList();
        var renamed = ConvertBasicC2Names(originals).Select(k => DetectronRules.Aggregate(k, (name, rule) => rule(name))).ToList();
        var duplicate = renamed.GroupBy(k => k, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"Several Caffe2 weights are renamed to '{duplicate.Key}': {string.Join(", ", originals.Where((_, i) => renamed[i] == duplicate.Key))}");
        return renamed.Zip(originals).ToList();
    }

    /// <summary>
    /// Renames the weights and drops what detectron2 has no use for: the background-class rows of
    /// <c>bbox_pred</c> (first 4) and of the mask predictor (first 1) are removed, and the
    /// background row of <c>cls_score</c> moves from index 0 to the end. Each such change is logged.
    /// </summary>
    public static (OrderedDictionary<string, HostTensor> Weights, OrderedDictionary<string, string> NewToOriginal, List<string> Log) ConvertC2DetectronWeights(
        IReadOnlyDictionary<string, HostTensor> weights)
    {
        var converted = new OrderedDictionary<string, HostTensor>(StringComparer.Ordinal);
        var originals = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        var log = new List<string>();
        foreach (var (name, original) in ConvertC2DetectronNames(weights.Keys))
        {
            var tensor = weights[original];
            originals[name] = original;
            if (name.StartsWith("bbox_pred.", StringComparison.Ordinal) || name.StartsWith("mask_head.predictor.", StringComparison.Ordinal))
            {
                var background = name.StartsWith("bbox_pred.", StringComparison.Ordinal) ? 4 : 1;
                converted[name] = Rows.DropFirst(tensor, background, name);
                log.Add($"Remove prediction weight for background class in {name}. The shape changes from {Shapes.Tuple(tensor.Shape)} to {Shapes.Tuple(converted[name].Shape)}.");
            }
            else if (name.StartsWith("cls_score.", StringComparison.Ordinal))
            {
                log.Add($"Move classification weights for background class in {name} from index 0 to index {tensor.Shape.FirstOrDefault() - 1}.");
                converted[name] = Rows.MoveFirstToLast(tensor, name);
            }
            else
            {
                converted[name] = tensor;
            }
        }
        return (converted, originals, log);
    }

    /// <summary>FPN lateral ("fpn.inner.res2.2.sum.lateral.weight") and output ("fpn.res2.2.sum.weight") convs.</summary>
    private static string FpnName(string name)
    {
        var splits = name.Split('.');
        var norm = splits.Contains("norm") ? ".norm" : "";
        if (name.StartsWith("fpn.inner.", StringComparison.Ordinal)) return $"fpn_lateral{Stage(splits[2], name)}{norm}.{splits[^1]}";
        if (name.StartsWith("fpn.res", StringComparison.Ordinal)) return $"fpn_output{Stage(splits[1], name)}{norm}.{splits[^1]}";
        return name;
    }

    private static int Stage(string resName, string name) =>
        int.TryParse(resName.AsSpan("res".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var stage)
            ? stage
            : throw new ArgumentException($"FPN weight '{name}' does not name its stage as resN");

    private static Func<string, string> Sub(string pattern, string replacement)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        return k => regex.Replace(k, replacement);
    }

    private static Func<string, string> Replace(string from, string to) => k => k.Replace(from, to, StringComparison.Ordinal);

    /// <summary>Operations on the rows (dimension 0) of a C-ordered tensor: each row is one contiguous block.</summary>
    private static class Rows
    {
        public static HostTensor DropFirst(HostTensor tensor, int count, string name)
        {
            var rowBytes = RowBytes(tensor, name);
            var rows = tensor.Shape[0];
            if (rows < count) throw new ArgumentException($"'{name}' has {rows} rows; {count} background rows cannot be removed");
            long[] shape = [rows - count, .. tensor.Shape[1..]];
            return new HostTensor(tensor.DType, shape, tensor.Data[(int)(count * rowBytes)..]);
        }

        public static HostTensor MoveFirstToLast(HostTensor tensor, string name)
        {
            var rowBytes = (int)RowBytes(tensor, name);
            if (tensor.Shape[0] == 0) return tensor;
            var data = new byte[tensor.Data.Length];
            tensor.Data.AsSpan(rowBytes).CopyTo(data);
            tensor.Data.AsSpan(0, rowBytes).CopyTo(data.AsSpan(data.Length - rowBytes));
            return new HostTensor(tensor.DType, tensor.Shape, data);
        }

        private static long RowBytes(HostTensor tensor, string name) =>
            tensor.Shape.Length > 0
                ? TensorDTypes.ByteLength(tensor.DType, tensor.Shape[1..])
                : throw new ArgumentException($"'{name}' is a scalar; it has no class rows");
    }
}

/// <summary>Shapes written as Python writes tuples: (2, 3), (3,), ().</summary>
internal static class Shapes
{
    public static string Tuple(IReadOnlyList<long> shape) => shape.Count == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
}
