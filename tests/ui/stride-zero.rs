bp::network! {
    struct Net {
        input x: [1, 8, 8];
        let p = max_pool2d(x, 2, stride = 0);
        let out = linear(flatten(p), 2);
        output out;
    }
}

fn main() {}
