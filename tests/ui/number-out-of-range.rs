bp::network! {
    struct Net {
        input x: [4];
        input big: [4294967296, 4294967296];
        param w: [4] = 1e400;
        let a = x * 1e400 + w;
        let b = leaky_relu(a, slope = 1e400);
        let c = linear(b, 18446744073709551615);
        output c;
    }
}

fn main() {}
