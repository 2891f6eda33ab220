"""``deepgrad shape`` (the output size of a convolution or pooling layer, explained) and
``deepgrad summary`` (a model's layers, output shapes and parameter counts).

Both print what :mod:`deepgrad.diagnostics` computes.
"""

from __future__ import annotations

import argparse

from deepgrad import _cli_validation as check
from deepgrad._cli_validation import UsageError
from deepgrad.diagnostics.shape import explain_conv_output
from deepgrad.diagnostics.summary import summarize
from deepgrad.models import get_model


def add_parsers(sub) -> None:
    """Add the ``shape`` and ``summary`` subcommands to the ``deepgrad`` subparsers."""
    p = sub.add_parser(
        "shape", help="explain the output size of a convolution or pooling layer",
        description="Print the output size of a 2-d convolution or pooling layer, "
                    "floor((H + 2p - d(k-1) - 1) / s) + 1 per spatial dimension (ceil with "
                    "--ceil-mode), and what each term does. Sizes and pairs are comma "
                    "separated: --input 1,28,28, --kernel 5 or --kernel 5,3.")
    p.add_argument("--input", type=check.shape, required=True, metavar="C,H,W",
                   help="one sample's shape, without the batch dimension (e.g. 1,28,28)")
    p.add_argument("--kernel", type=check.positive_int_or_pair, required=True, metavar="K",
                   help="kernel size k, or KH,KW")
    p.add_argument("--stride", type=check.positive_int_or_pair, default=1, metavar="S",
                   help="stride s, or SH,SW (default: 1)")
    p.add_argument("--padding", type=check.non_negative_int_or_pair, default=0, metavar="P",
                   help="zero padding p on each side, or PH,PW (default: 0)")
    p.add_argument("--dilation", type=check.positive_int_or_pair, default=1, metavar="D",
                   help="dilation d, or DH,DW (default: 1)")
    p.add_argument("--out-channels", type=check.positive_int, default=None, metavar="N",
                   help="output channels of a convolution (default: the input's channels, "
                        "as pooling keeps them)")
    p.add_argument("--ceil-mode", action="store_true",
                   help="round up instead of down, as pooling's ceil_mode=True")
    p.set_defaults(handler=shape)

    p = sub.add_parser(
        "summary", help="print a model's layers, output shapes and parameter counts",
        description="Build a registered model for the given input shape and print its "
                    "summary: each layer's output shape and parameters, and the totals.")
    p.add_argument("--model", required=True, metavar="NAME",
                   help="a registered model name (see deepgrad train --help)")
    p.add_argument("--input", type=check.shape, required=True, metavar="C,H,W",
                   help="one sample's shape, without the batch dimension (e.g. 1,28,28)")
    p.add_argument("--num-classes", type=check.positive_int, default=10, metavar="K",
                   help="number of classes (default: 10)")
    p.set_defaults(handler=summary)


def shape(args: argparse.Namespace) -> int:
    """``deepgrad shape``: print :func:`deepgrad.diagnostics.shape.explain_conv_output`."""
    try:
        text = explain_conv_output(
            input_shape=args.input, kernel=args.kernel, stride=args.stride,
            padding=args.padding, dilation=args.dilation, out_channels=args.out_channels,
            ceil_mode=args.ceil_mode)
    except ValueError as exc:  # an impossible size: the kernel does not fit, ...
        raise UsageError(str(exc)) from None
    print(text)
    return 0


def summary(args: argparse.Namespace) -> int:
    """``deepgrad summary``: print ``summarize(model, input_shape).table()``."""
    try:
        model = get_model(args.model, input_shape=args.input, num_classes=args.num_classes)
    except (ValueError, TypeError) as exc:  # an unknown model, a shape it cannot take
        raise UsageError(str(exc)) from None
    try:
        table = summarize(model, args.input).table()
    except ValueError as exc:  # an input the model cannot run on
        raise UsageError(str(exc)) from None
    print(table)
    return 0
