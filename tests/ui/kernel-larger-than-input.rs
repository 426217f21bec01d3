bp::network! {
    struct Net {
        input x: [1, 4, 4];
        let c = conv2d(x, 2, kernel = 5);
        let out = linear(flatten(c), 2);
        output out;
    }
}

fn main() {}
